import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from wilton_core.coherence.tokens import (
    MAX_TOKEN_CHARS,
    SigningKey,
    TokenError,
    decode_token,
    encode_token,
    make_claims,
    new_signing_key,
)

ISS, AUD, NOW = "iss-x", "aud-y", 1_000_000.0
KEY = SigningKey("k1", b"\x01" * 32, 0.0)
KEYS = {"k1": KEY}


def claims(**over):
    c = make_claims(sub="admin", scopes=["phi:read"], typ="access", now=NOW, ttl_s=900, issuer=ISS,
                    audience=AUD, jti="j1", family="f1")
    c.update(over)
    return c


def dec(tok, now=NOW, keys=KEYS, typ="access"):
    return decode_token(tok, keys, now, issuer=ISS, audience=AUD, typ=typ)


def reason(tok, **kw) -> str:
    with pytest.raises(TokenError) as ei:
        dec(tok, **kw)
    return ei.value.reason


def test_roundtrip_is_pure_in_now() -> None:
    tok = encode_token(claims(), KEY)
    assert dec(tok)["sub"] == "admin"
    assert dec(tok, now=NOW + 899)["scope"] == "phi:read"
    assert reason(tok, now=NOW + 900) == "expired"
    assert reason(tok, now=NOW - 5) == "not_yet_valid"


def test_header_carries_kid_and_pinned_alg() -> None:
    h = jwt.get_unverified_header(encode_token(claims(), KEY))
    assert h["alg"] == "HS256" and h["kid"] == "k1"


def test_rejections() -> None:
    good = encode_token(claims(), KEY)
    head, body, sig = good.split(".")
    tampered_body = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(body).replace(b"phi:read", b"phi:writ")).decode()
    assert reason(f"{head}.{tampered_body}.{sig}") == "bad_signature"
    assert reason(encode_token(claims(iss="evil"), KEY)) == "bad_issuer"
    assert reason(encode_token(claims(aud="other"), KEY)) == "bad_audience"
    assert reason(good, typ="refresh") == "wrong_type"
    assert reason(good, keys={}) == "unknown_kid"
    assert reason(good, keys={"k1": SigningKey("k1", KEY.secret, 0.0, retired_at=NOW - 1)}) == "unknown_kid"
    other = SigningKey("k1", b"\x02" * 32, 0.0)
    assert reason(encode_token(claims(), other)) == "bad_signature"
    assert reason("not-a-jwt") == "malformed"
    assert reason("") == "malformed"
    assert reason("a" * (MAX_TOKEN_CHARS + 1)) == "malformed"
    missing = claims()
    del missing["nbf"]
    assert reason(encode_token(missing, KEY)) == "invalid"


def test_alg_none_rejected() -> None:
    tok = jwt.encode(claims(), key=None, algorithm="none", headers={"kid": "k1"})
    assert reason(tok) == "bad_algorithm"


def test_rs256_and_key_confusion_rejected() -> None:
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tok = jwt.encode(claims(), priv, algorithm="RS256", headers={"kid": "k1"})
    assert reason(tok) == "bad_algorithm"
    # The classic confusion: HMAC-sign with a public key's PEM as the secret. Our verifying keys
    # are random secrets, never a public key, so the signature simply does not match.
    pem = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = jwt.api_jws.PyJWS().encode(jwt.utils.base64url_encode(b"{}"), b"x" * 32, algorithm="HS256")
    assert reason(forged) in {"unknown_kid", "malformed"}
    import hashlib
    import hmac
    import json
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(claims()).encode())
    sig = jwt.utils.base64url_encode(hmac.new(pem, header + b"." + payload, hashlib.sha256).digest())
    assert reason((header + b"." + payload + b"." + sig).decode()) == "bad_signature"


def test_new_keys_are_random_and_repr_hides_secret() -> None:
    a, b = new_signing_key(0), new_signing_key(0)
    assert a.kid != b.kid and a.secret != b.secret and len(a.secret) == 32
    assert a.secret.hex() not in repr(a)
