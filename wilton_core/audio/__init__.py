"""The voice bridge (issue 19): speech to text and text to speech, local first.

One job per module: decode/encode (PyAV), limits and errors, the engine protocols (stt, tts) and
their implementations (embedded faster-whisper and espeak-ng; OpenAI-compatible HTTP clients),
the service that chains them with chat's fallback and writes the ledger, live segmentation,
renderings, the assistant turn, and the audio phi report. Heavy libraries load lazily.
See docs/voice.md.
"""
