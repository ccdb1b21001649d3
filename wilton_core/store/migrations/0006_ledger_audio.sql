-- The voice bridge (issue 19): what an audio request carried, per ledger row.
--   audio_s  seconds of audio: heard (speech to text, intent 'stt') or spoken (text to speech, 'tts');
--   chars    characters of text: transcribed out ('stt') or read in ('tts').
-- Chat rows keep 0 in both. Audio rows are excluded from the chat phi window (docs/voice.md).
ALTER TABLE ledger ADD COLUMN audio_s DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN chars BIGINT NOT NULL DEFAULT 0;
