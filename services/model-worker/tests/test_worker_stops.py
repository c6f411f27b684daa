from switchyard_model_worker.stops import StopMatcher


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    out = []
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    out.append(matcher.flush())
    return "".join(out), False


def test_no_stops_passes_text_through() -> None:
    assert feed_all(StopMatcher([]), ["a", "b"]) == ("ab", False)


def test_stop_inside_one_piece_cuts_there() -> None:
    assert feed_all(StopMatcher(["END"]), ["abcENDxyz"]) == ("abc", True)


def test_stop_split_across_pieces_never_leaks() -> None:
    matcher = StopMatcher(["###"])
    assert matcher.feed("hello #") == ("hello ", False)
    assert matcher.feed("#") == ("", False)
    assert matcher.feed("# more") == ("", True)


def test_partial_match_that_fails_is_released() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("ST") == ("", False)
    assert matcher.feed("AR") == ("STAR", False)


def test_held_text_is_flushed_at_the_end() -> None:
    assert feed_all(StopMatcher(["<end>"]), ["x <e", "n"]) == ("x <en", False)


def test_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopMatcher(["b", "a"]), ["xxab"]) == ("xx", True)
