"""The Redactor: known secrets, their encodings, every 16-character piece, derived tokens and controls."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conformance.client import Client, Redactor as ClientRedactor
from conformance.context import RunState
from conformance.forge import flip_last_bit, make_hs, parse
from conformance.redaction import Redactor, for_config, register_private_key

from .harness import config_for

KEY = b"k" * 40
TOKEN = make_hs({"alg": "HS256", "typ": "JWT"}, {"sub": "bob", "exp": 1_900_000_000, "jti": "a1"}, KEY)
SIGNATURE = TOKEN.rsplit(".", 1)[1]
# Nothing in common with the tokens above (a header that begins differently, other claims, another key).
STRANGER = make_hs({"typ": "JWT", "alg": "HS256"}, {"iss": "elsewhere"}, b"another key entirely, not the run's")


@pytest.fixture
def redact() -> Redactor:
    redactor = Redactor({"correct horse battery staple": "${PASSWORD}"})
    redactor.add_token(TOKEN, "${ACCESS_TOKEN}")
    return redactor


def pieces(secret: str) -> set[str]:
    return {secret[i : i + 16] for i in range(len(secret) - 15)}


def assert_no_piece(text: str, secret: str = SIGNATURE) -> None:
    assert not [piece for piece in pieces(secret) if piece in text], text


def test_the_client_module_still_exports_the_redactor() -> None:
    assert ClientRedactor is Redactor


@pytest.mark.parametrize(
    "shown",
    [
        TOKEN,
        quote(TOKEN, safe=""),
        json.dumps(TOKEN)[1:-1],
        TOKEN.replace("-", "+").replace("_", "/"),  # standard base64 instead of base64url
        quote(TOKEN.replace("-", "+").replace("_", "/"), safe=""),
    ],
    ids=["raw", "percent", "json", "standard-base64", "standard-base64-percent"],
)
def test_a_known_token_is_its_placeholder_in_every_encoding(redact: Redactor, shown: str) -> None:
    assert redact(f"Authorization: Bearer {shown}") == "Authorization: Bearer ${ACCESS_TOKEN}"


def test_a_signature_bit_flip_is_a_forged_token_with_its_recipe(redact: Redactor) -> None:
    parsed = parse(TOKEN)
    forged = f"{parsed.signing_input}.{flip_last_bit(parsed.signature)}"
    assert forged != TOKEN
    text = redact(f"Bearer {forged}")
    assert text == "Bearer ${FORGED_TOKEN_1}"
    assert redact.recipe("${FORGED_TOKEN_1}") == (
        "built from ${ACCESS_TOKEN}: header kept, claims kept, signature with 1 character(s) changed"
    )
    assert redact(forged) == "${FORGED_TOKEN_1}"  # the same token keeps its name


def test_a_truncated_token_is_a_forged_token(redact: Redactor) -> None:
    assert redact(TOKEN[:-4]) == "${FORGED_TOKEN_1}"
    assert redact.recipe("${FORGED_TOKEN_1}") == (
        f"built from ${{ACCESS_TOKEN}}: header kept, claims kept, signature cut to {len(SIGNATURE) - 4} of "
        f"{len(SIGNATURE)} characters"
    )
    assert redact(TOKEN.rsplit(".", 1)[0]) == "${FORGED_TOKEN_2}"  # header.claims, the signature gone
    assert (
        redact.recipe("${FORGED_TOKEN_2}") == "built from ${ACCESS_TOKEN}: header kept, claims kept, signature removed"
    )


@pytest.mark.parametrize("start", [0, 5, len(SIGNATURE) - 16])
def test_every_16_character_piece_of_a_signature_is_replaced(redact: Redactor, start: int) -> None:
    piece = SIGNATURE[start : start + 16]
    assert redact(f"actual: sig={piece}!") == "actual: sig=[piece of ${ACCESS_TOKEN}]!"


def test_a_15_character_piece_is_not_a_secret(redact: Redactor) -> None:
    assert redact(f"x {SIGNATURE[3:18]} y") == f"x {SIGNATURE[3:18]} y"


def test_39_of_43_signature_characters_in_an_actual_string_are_replaced(redact: Redactor) -> None:
    text = f"the server answered with signature {SIGNATURE[2:41]}..."
    redacted = redact(text)
    assert_no_piece(redacted)
    assert redacted == "the server answered with signature [piece of ${ACCESS_TOKEN}]..."


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s.replace("-", "+").replace("_", "/"),
        lambda s: quote(s.replace("-", "+").replace("_", "/"), safe=""),
        lambda s: base64.b64encode(base64.urlsafe_b64decode(s + "=")).decode(),  # padded standard base64
        lambda s: json.dumps(s),
    ],
    ids=["standard", "standard-percent", "padded", "json-escaped"],
)
def test_a_re_encoded_flipped_signature_is_replaced(redact: Redactor, encode: object) -> None:
    flipped = flip_last_bit(SIGNATURE)
    shown = encode(flipped)  # type: ignore[operator]
    assert_no_piece(redact(f"signature: {shown}"), SIGNATURE.replace("-", "+").replace("_", "/"))
    assert_no_piece(redact(f"signature: {shown}"))


def test_a_long_password_is_replaced_whole_and_by_pieces() -> None:
    redact = Redactor({"a very long pass phrase indeed": "${PASSWORD}"})
    assert redact("pw=a very long pass phrase indeed") == "pw=${PASSWORD}"
    assert redact("pw=a+very+long+pass+phrase+indeed") == "pw=${PASSWORD}"
    assert redact("pw=a very long pass phrase inde") == "pw=[piece of ${PASSWORD}]"


def test_a_token_signed_with_a_key_the_run_holds_is_a_control() -> None:
    """Known by its signature alone; then a copy cut short is replaced too, and an unrelated token is kept."""
    redact = Redactor()
    redact.add_hmac_key(KEY, "${HS_SECRET}")
    control = make_hs({"alg": "HS384"}, {"sub": "anyone"}, KEY, "HS384")
    other = STRANGER
    assert redact(f"{control} {other}") == f"${{FORGED_TOKEN_1}} {other}"
    assert redact.recipe("${FORGED_TOKEN_1}") == "a token signed with ${HS_SECRET}"
    assert redact(control[:-5]) == "${FORGED_TOKEN_2}"
    assert redact.recipe("${FORGED_TOKEN_2}").startswith("built from ${FORGED_TOKEN_1}: header kept, claims kept")  # type: ignore[union-attr]
    assert redact(KEY.decode()) == "${HS_SECRET}"


def test_a_control_re_signed_from_a_known_token_says_what_changed(redact: Redactor) -> None:
    redact.add_hmac_key(KEY, "${HS_SECRET}")
    claims = {**(parse(TOKEN).claims or {}), "exp": 1}
    control = make_hs({"alg": "HS256", "typ": "JWT"}, claims, KEY)
    assert redact(control) == "${FORGED_TOKEN_1}"
    assert redact.recipe("${FORGED_TOKEN_1}") == (
        "built from ${ACCESS_TOKEN}: header kept, claims with exp changed, signed with ${HS_SECRET}"
    )


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_token_signed_with_the_given_private_key_is_a_control(tmp_path: Path, kind: str) -> None:
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "key.pem").write_bytes(pem)
    redact = Redactor()
    register_private_key(redact, tmp_path / "key.pem")
    control = jwt.encode({"sub": "bob"}, key, algorithm="RS256" if kind == "rsa" else "ES256")
    assert redact(f"{control} {STRANGER}") == f"${{FORGED_TOKEN_1}} {STRANGER}"
    pem_line = pem.decode().splitlines()[2]
    assert redact(pem_line) == "${PRIVATE_KEY}" or "[piece of ${PRIVATE_KEY}]" in redact(pem_line)


def test_an_answer_teaches_its_tokens_whatever_its_status() -> None:
    redact = Redactor({"carol's own password": "${SECOND_PASSWORD}"})
    body = json.dumps({"access_token": TOKEN, "refresh_token": "opaque-refresh-token-1234", "error": "x"}).encode()
    redact.learn_answer("grant_type=password&username=carol&password=carol%27s+own+password", body, [])
    assert redact(TOKEN) == "${SECOND_ACCESS_TOKEN}"
    assert redact("token=opaque-refresh-token-1234") == "token=${SECOND_REFRESH_TOKEN}"


def test_a_jwt_in_an_answer_is_learnt_but_an_echo_of_the_request_is_not() -> None:
    redact = Redactor()
    issued = make_hs({"alg": "HS256"}, {"sub": "bob"}, b"server key nobody gave us, long")
    echoed = make_hs({"alg": "HS512", "kid": "x"}, {"sub": "eve"}, b"attacker key, also long enough", "HS512")
    body = json.dumps({"detail": f"bad token {echoed}", "id": issued}).encode()
    redact.learn_answer(f"Bearer {echoed}", body, [f"session={issued}; HttpOnly"])
    assert redact(issued) == "${ISSUED_TOKEN}"
    assert redact(echoed) == echoed


def test_the_curl_line_says_how_to_build_a_forged_token(redact: Redactor) -> None:
    forged = TOKEN[:-4]
    curl = redact.annotate(redact(f"curl -i -H 'Authorization: Bearer {forged}' http://127.0.0.1/users/me"))
    assert curl == (
        "curl -i -H 'Authorization: Bearer ${FORGED_TOKEN_1}' http://127.0.0.1/users/me  # ${FORGED_TOKEN_1} = "
        f"built from ${{ACCESS_TOKEN}}: header kept, claims kept, signature cut to {len(SIGNATURE) - 4} of "
        f"{len(SIGNATURE)} characters"
    )
    assert Redactor().annotate(curl) == curl  # a redactor that never saw the token keeps the recipe
    assert redact.annotate(redact(curl)) == curl  # redacting again changes nothing


def test_the_config_redactor_knows_passwords_and_keys() -> None:
    config = config_for()
    redact = for_config(config)
    assert redact(f"password={config.primary.password}") == "password=${PASSWORD}"


def test_redaction_is_safe_while_tokens_are_added(redact: Redactor) -> None:
    errors: list[BaseException] = []
    text = f"Bearer {TOKEN} " * 50

    def add() -> None:
        for n in range(200):
            redact.add_token(make_hs({"alg": "HS256"}, {"n": n}, KEY), "${ACCESS_TOKEN}")

    def read() -> None:
        try:
            for _ in range(200):
                assert TOKEN not in redact(text)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize("key", [b"a-published-key-from-the-list", b"secret"])
def test_a_cracked_key_makes_its_tokens_controls(key: bytes) -> None:
    """Tokens signed with a cracked key are replaced; its text too, unless it is a short common word."""
    client = Client("http://127.0.0.1", redactor=Redactor())
    try:
        state = RunState(config_for(), client, {})
        state.cracked_secret = key
        control = make_hs({"typ": "JWT", "alg": "HS256"}, {"sub": "x"}, key)
        assert client.redact(control) == "${FORGED_TOKEN_1}"
        assert client.redact.recipe("${FORGED_TOKEN_1}") == "a token signed with ${CRACKED_KEY}"
        shown = "${CRACKED_KEY}" if len(key) >= 8 else key.decode()
        assert client.redact(f"key {key.decode()}") == f"key {shown}"
    finally:
        client.close()
