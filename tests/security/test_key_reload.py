"""Gateway keys follow the config file while the gateway runs: an operator revokes a leaked or
hostile key, rotates one, or re-binds it by editing `keys:`, with no restart (each replica polls
its own copy of the file). A file that no longer loads, or that lists no key at all (which would
switch authentication off), leaves the keys in force."""

from __future__ import annotations

import logging

import openai
import pytest
import yaml

from gateway.security.keys import hash_key
from tests._wait import wait_until
from tests import loopback

from .conftest import KEYS, auth, chat, key_specs

NEW = "gw-rotated-Xq7Lm2Pz9Wd4Ks8V"


def _status(gw, key: str, **headers: str) -> int:
    return loopback.post(gw.base_url + "/chat/completions", json=chat(), headers={**auth(key), **headers}).status_code


def _edit(gw, edit) -> None:
    path = gw.state.settings.config
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_key_is_revoked_rotated_and_rebound_without_a_restart(secure_factory):
    gw = secure_factory(policy_reload_s=0.1)
    assert _status(gw, KEYS["alpha"]) == 200 and _status(gw, NEW) == 401

    def rotate(doc: dict) -> None:
        doc["keys"] = [k for k in doc["keys"] if k["name"] != "alpha"]
        doc["keys"].append({"name": "alpha-2", "sha256": hash_key(NEW), "pipeline": "batch"})

    _edit(gw, rotate)
    wait_until(lambda: _status(gw, KEYS["alpha"]) == 401, "the revoked key to be refused", timeout=10)
    client = openai.OpenAI(base_url=gw.base_url, api_key=NEW, max_retries=0)
    assert client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}]).choices
    assert _status(gw, NEW, **{"X-Pipeline-Id": "other"}) == 403  # its new binding holds
    assert _status(gw, KEYS["support"]) == 200  # the untouched key serves throughout


@pytest.mark.parametrize("breakage", ["no-keys", "broken"])
def test_an_edit_that_would_open_or_break_the_gateway_keeps_the_keys(secure_factory, caplog, breakage):
    caplog.set_level(logging.ERROR, logger="gateway.security")
    gw = secure_factory(policy_reload_s=0.1)

    def edit(doc: dict) -> None:
        if breakage == "no-keys":
            doc.pop("keys")
        else:
            doc["keys"] = [{"name": "x", "sha256": "not-a-digest", "color": "blue"}]

    _edit(gw, edit)
    wait_until(lambda: "gateway keys not reloaded" in caplog.text, "the refusal to be logged", timeout=10)
    assert _status(gw, KEYS["alpha"]) == 200 and _status(gw, "no-key-at-all") == 401
    assert gw.app.state.keyring.enabled and len(gw.app.state.keyring) == len(key_specs()) + 1  # + the master key
