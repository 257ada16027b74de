"""Trusted-clients file (CH-24, CH-25): YAML and JSON load; every error names file, entry and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from cds.auth import TrustedClient, load_trusted_clients
from cds.auth.trust import jku_matches
from cds.demo.ehr import EhrKeys, jwks_of
from cds.errors import ConfigError

EC = EhrKeys.generate("ES384", kid="ec-1")
RS = EhrKeys.generate("RS384", kid="rs-1")
ENTRIES: list[dict[str, Any]] = [
    {"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/.well-known/jwks.json"},
    {"iss": "https://clinic.example.org", "jwks": jwks_of(EC, RS), "tenants": ["a"]},
    {
        "iss": "https://sandbox.cds-hooks.org",
        "jku_allowlist": ["https://sandbox.cds-hooks.org/.well-known/jwks.json"],
    },
    {"iss": "http://localhost:9000", "jwks_url": "http://127.0.0.1:9000/jwks.json"},
]


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(data))
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("name", ["clients.yaml", "clients.yml", "clients.json"])
def test_yaml_and_json_load(tmp_path: Path, name: str) -> None:
    clients = load_trusted_clients(write(tmp_path, name, ENTRIES))
    assert [c.iss for c in clients] == [e["iss"] for e in ENTRIES]
    assert clients[1].inline_key("ec-1") is not None
    assert clients[1].inline_key("rs-1") is not None
    assert clients[1].inline_key("nope") is None
    assert clients[2].allows_jku("https://sandbox.cds-hooks.org/.well-known/jwks.json")
    assert not clients[0].allows_jku("https://ehr.example.org/.well-known/jwks.json")


def test_an_empty_list_loads(tmp_path: Path) -> None:
    assert load_trusted_clients(write(tmp_path, "c.yaml", [])) == []


def _bad_rsa_jwk() -> dict[str, Any]:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return {**RSAAlgorithm.to_jwk(small.public_key(), as_dict=True), "kid": "small"}


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ({"jwks_url": "https://x.example/j"}, "iss", "Field required"),
        ({"iss": "", "jwks_url": "https://x.example/j"}, "iss", "at least 1"),
        ({"iss": "a", "jwks_url": "http://x.example/j"}, "jwks_url", "https"),
        ({"iss": "a", "jwks_url": "https://u:p@x.example/j"}, "jwks_url", "https"),
        ({"iss": "a", "jwks_url": "https://x.example/j?q=1"}, "jwks_url", "no query"),
        ({"iss": "a", "jwks_uri": "https://x.example/j"}, "jwks_uri", "Extra inputs"),
        ({"iss": "a"}, "entry", "set one of jwks_url, jwks"),
        (
            {"iss": "a", "jwks_url": "https://x.example/j", "jwks": jwks_of(EC)},
            "entry",
            "not both",
        ),
        ({"iss": "a", "jku_allowlist": ["http://x.example/"]}, "jku_allowlist", "[0]"),
        ({"iss": "a", "jku_allowlist": ["https://x.example/j?v=1"]}, "jku_allowlist", "no query"),
        ({"iss": "a", "jwks": {"keys": "x"}}, "jwks", "JWKS object"),
        ({"iss": "a", "jwks": {"keys": [{**EC.public_jwk, "d": "AA"}]}}, "jwks", "private"),
        (
            {"iss": "a", "jwks": {"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}},
            "jwks",
            "symmetric",
        ),
        ({"iss": "a", "jwks": {"keys": [{**EC.public_jwk, "alg": "HS256"}]}}, "jwks", "HS256"),
        ({"iss": "a", "jwks": {"keys": [{**EC.public_jwk, "kid": None}]}}, "jwks", "no kid"),
        ({"iss": "a", "jwks": {"keys": [{**EC.public_jwk, "use": "enc"}]}}, "jwks", "use"),
        ({"iss": "a", "jwks": {"keys": [_bad_rsa_jwk()]}}, "jwks", "2048"),
        ({"iss": "a", "jwks": jwks_of(EC, EC)}, "jwks", "repeated"),
        ({"iss": "a", "jwks": {"keys": [{**EC.public_jwk, "x": "AA"}]}}, "jwks", "keys[0]"),
    ],
)
@pytest.mark.parametrize("name", ["clients.yaml", "clients.json"])
def test_bad_entry_names_file_entry_and_field(
    tmp_path: Path, name: str, entry: dict[str, Any], field: str, words: str
) -> None:
    path = write(tmp_path, name, [ENTRIES[0], entry])
    with pytest.raises(ConfigError) as info:
        load_trusted_clients(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "entry 2" in message
    assert f": {field}:" in message
    assert words in message
    if name.endswith(".yaml"):
        assert message.startswith(f"{path}:3:")  # the line where entry 2 starts


def test_duplicate_iss(tmp_path: Path) -> None:
    # Copies: PyYAML writes one object twice as an alias, which the loader refuses.
    entries = json.loads(json.dumps([ENTRIES[0], ENTRIES[1], ENTRIES[0]]))
    path = write(tmp_path, "c.yaml", entries)
    with pytest.raises(
        ConfigError, match=r"entry 3: iss: 'https://ehr.example.org' already used by entry 1"
    ):
        load_trusted_clients(path)


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("c.yaml", "iss: a\n", "expected a list"),
        ("c.yaml", "- iss: [a\n", "invalid YAML"),
        ("c.json", '[{"iss": "a",}]', "c.json:1: invalid JSON"),
        ("c.yaml", "- just a string\n", "entry 1: expected a mapping"),
        ("c.yaml", "", "expected a list"),
    ],
)
def test_bad_file(tmp_path: Path, name: str, text: str, words: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=r".*") as info:
        load_trusted_clients(path)
    assert str(info.value).startswith(str(path))
    assert words in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_trusted_clients(tmp_path / "absent.yaml")


def test_model_is_frozen() -> None:
    client = TrustedClient(iss="a", jwks_url="https://x.example/j")
    with pytest.raises(ValueError, match="frozen"):
        client.iss = "b"  # type: ignore[misc]


PREFIX = "https://ehr.example.org/jwks"


@pytest.mark.parametrize(
    ("prefix", "jku", "ok"),
    [
        (PREFIX, PREFIX, True),
        (PREFIX, PREFIX + "/v2.json", True),
        (PREFIX + "/", PREFIX + "/v2.json", True),
        ("https://ehr.example.org", "https://ehr.example.org/any/path", True),
        ("https://EHR.example.org/jwks", "https://ehr.example.org:443/jwks", True),
        ("http://127.0.0.1:8080/jwks.json", "http://127.0.0.1:8080/jwks.json", True),
        (PREFIX, PREFIX + "-evil", False),
        (PREFIX, PREFIX + ".json", False),
        (PREFIX, "https://ehr.example.org/other", False),
        (PREFIX, "https://ehr.example.org.evil.com/jwks", False),
        (PREFIX, "https://ehr.example.org@evil.com/jwks", False),
        (PREFIX, "https://user@ehr.example.org/jwks", False),
        (PREFIX, "http://ehr.example.org/jwks", False),
        (PREFIX, "https://ehr.example.org:444/jwks", False),
        (PREFIX, PREFIX + "/../admin", False),
        (PREFIX, PREFIX + "/%2E%2E/admin", False),
        (PREFIX, PREFIX + "/./x", False),
        (PREFIX, PREFIX + "?a=1", False),
        (PREFIX, PREFIX + "#f", False),
        (PREFIX, PREFIX + "/\\evil", False),
        (PREFIX, PREFIX + "/\x7f", False),
        (PREFIX, PREFIX + "/\tx", False),
        (PREFIX, PREFIX + "/ x", False),
        (PREFIX, PREFIX + "/" + "a" * 3000, False),
        (PREFIX, "https://ehr.exаmple.org/jwks", False),  # Cyrillic а
        ("http://ehr.example.org/jwks", "http://ehr.example.org/jwks", False),  # not loopback
    ],
)
def test_jku_matching(prefix: str, jku: str, ok: bool) -> None:
    assert jku_matches(prefix, jku) is ok


def test_deep_json_is_named_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError) as refused:
        load_trusted_clients(path)
    assert str(refused.value) == f"{path}: nested too deeply to be a trusted-clients file"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("- iss: " + "[" * 50_000 + "]" * 50_000 + "\n", 1, "nested more than 16 levels deep"),
        ("- " * 20_000 + "x\n", 1, "nested more than 16 levels deep"),
        # YAML keeps the last of two equal keys: the first key source would be silently replaced.
        (
            "- iss: https://ehr.example.org\n"
            "  jwks_url: https://ehr.example.org/jwks.json\n"
            "  jwks_url: https://attacker.example/jwks.json\n",
            3,
            "duplicate key 'jwks_url' (first at line 2)",
        ),
        # Aliases of aliases expand to billions of values for the validation to walk.
        (
            "- iss: https://ehr.example.org\n"
            "  jku_allowlist: &a [https://ehr.example.org/jwks.json]\n"
            "- iss: https://clinic.example.org\n"
            "  jku_allowlist: *a\n",
            4,
            "aliases (*name) are not allowed",
        ),
    ],
)
def test_yaml_is_read_strictly(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_trusted_clients(path)
    assert str(refused.value) == f"{path}:{line}: invalid YAML: {problem}"


def test_an_iss_that_is_not_a_string_is_not_repeated(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    path.write_text('[{"iss": ' + "[" * 500 + "]" * 500 + "}]")
    with pytest.raises(ConfigError, match=r"entry 1 \(iss not a string\): iss: ") as refused:
        load_trusted_clients(path)
    assert "[[" not in str(refused.value)


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        ({"iss": "x", "jwks_url": "https://u:pw123secret@ehr.example.org/jwks"}, "'https://***@"),
        ({"iss": "x", "jwks_url": "https://ehr.example.org/jwks?token=SECRET"}, "jwks?***' has a"),
        ({"iss": "x", "jku_allowlist": ["https://u:SECRET@ehr.example.org/"]}, "[0] 'https://***@"),
        ({"iss": "https://u:SECRET@ehr", "jwks_url": "ftp://ehr"}, "(iss 'https://***@ehr')"),
    ],
)
def test_a_refused_url_is_repeated_without_user_info_or_query(
    tmp_path: Path, entry: dict[str, Any], shown: str
) -> None:
    path = write(tmp_path, "clients.yaml", [entry])
    with pytest.raises(ConfigError) as refused:
        load_trusted_clients(path)
    assert shown in str(refused.value)
    assert "SECRET" not in str(refused.value)
    assert "pw123secret" not in str(refused.value)
