"""Where the model-worker instances are: ``static`` (settings), ``consul`` (a blocking-query
watch) or ``kubernetes`` (EndpointSlices), behind the ``Discovery`` interface in ``base``."""
