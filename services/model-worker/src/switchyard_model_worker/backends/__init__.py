"""Model backends behind one interface, chosen by config."""
