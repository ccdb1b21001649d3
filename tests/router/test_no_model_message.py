"""The 400/503 message when no model is left: says what the request needs, and what to do."""

from wilton_core.core.selector import RequestView
from wilton_core.router.decide import no_model_message


def test_vision_with_no_vision_model_says_what_to_add() -> None:
    msg = no_model_message(RequestView(needs_vision=True), 62, None, capable=False)
    assert msg.startswith("No configured model can serve this request: it needs image input (vision) and "
                          "a context window of at least 62 tokens.")
    assert "supports_vision = true" in msg


def test_tools_and_scope_are_named() -> None:
    msg = no_model_message(RequestView(needs_tools=True), 100, True, capable=False)
    assert "No configured local model" in msg
    assert "tool calling and a context window of at least 100 tokens" in msg
    assert "supports_vision" not in msg


def test_outage_is_not_called_a_configuration_problem() -> None:
    msg = no_model_message(RequestView(), 5000, False, capable=True)
    assert "No API model that can serve this request is healthy right now" in msg
    assert "failing or cooling down" in msg
