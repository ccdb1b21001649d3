"""One reading of a chat request's text, images and size (core/messages.py)."""

from wilton_core.core.messages import (
    content_text,
    estimate_text_tokens,
    estimate_tokens,
    has_images,
    last_user_text,
    prompt_chars,
    transcript,
)

PNG = "data:image/png;base64,iVBORw0KGgo="


def test_images_as_parts_and_as_data_urls_inside_text() -> None:
    assert has_images([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}])
    assert has_images([{"role": "user", "content": [{"type": "input_image", "image_url": PNG}]}])
    # a data URL pasted in text is an image too (the router's old helper missed this one)
    assert has_images([{"role": "user", "content": f"what is this? {PNG}"}])
    assert has_images([{"role": "user", "content": [{"type": "text", "text": PNG}]}])
    assert not has_images([{"role": "user", "content": "data:text/plain;base64,aGk="}, "junk", {"content": 5}])


def test_text_of_any_part_with_a_string_text() -> None:
    content = [{"type": "text", "text": "a"}, {"type": "input_text", "text": "b"}, {"type": "image_url"},
               {"type": "text", "text": 3}]
    assert content_text(content) == "a\nb"  # the providers' helper used to drop "input_text"
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": content}, "junk"]
    assert prompt_chars(msgs) == 5 and prompt_chars("not a list") == 0
    assert last_user_text(msgs) == "a\nb" and last_user_text([]) == ""
    assert transcript(msgs) == "system: sys\nuser: a\nb" and len(transcript(msgs, limit=4)) == 4


def test_token_estimate_counts_non_ascii_characters_as_tokens() -> None:
    assert estimate_text_tokens("abcd" * 10) == 10
    assert estimate_text_tokens("中文" * 50) == 100
    assert estimate_text_tokens("") == 0
    assert estimate_tokens([{"role": "user", "content": "Привет"}]) == 6
    assert estimate_tokens(None) == 0
