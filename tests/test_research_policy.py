"""The network policy (research/policy.py): domain lists, the private-address guard, DNS answers,
and the ``[network]`` settings it is built from."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmanus_tui.config import load_settings
from openmanus_tui.errors import ConfigError
from openmanus_tui.research.policy import (
    NetworkPolicy,
    PolicyRefusal,
    address_class,
    static_resolver,
)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("::ffff:127.0.0.1", "loopback (inside the IPv6 address ::ffff:7f00:1)"),
        ("::ffff:10.0.0.1", "private (inside the IPv6 address ::ffff:a00:1)"),
        ("64:ff9b::a9fe:a9fe", "link-local (inside the IPv6 address 64:ff9b::a9fe:a9fe)"),
        ("2002:7f00:1::", "loopback (inside the IPv6 address 2002:7f00:1::)"),
        ("192.0.2.1", "private"),  # documentation range
    ],
)
def test_address_classes_that_are_refused(address: str, why: str) -> None:
    assert address_class(address) == why


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_class(address) is None


def test_blocked_domains_match_whole_label_suffixes() -> None:
    policy = NetworkPolicy(blocked_domains=["blocked.example.com"])
    for url in ("https://blocked.example.com/", "http://a.b.Blocked.Example.COM./x"):
        with pytest.raises(PolicyRefusal) as info:
            policy.check_url(url)
        assert info.value.rule == "blocked_domains"
        assert "under the blocked domain blocked.example.com" in str(info.value)
    # a different registered name that merely ends with the same letters is not blocked
    assert policy.check_url("https://notblocked.example.com/") == "notblocked.example.com"
    assert policy.check_url("https://example.com/") == "example.com"


def test_allowed_domains_restrict_and_with_allowed_extends() -> None:
    policy = NetworkPolicy(allowed_domains=["gov"])
    assert policy.check_url("https://stats.energy-agency.gov/x")
    with pytest.raises(PolicyRefusal, match="not under an allowed domain"):
        policy.check_url("https://news.dailyclarion.com/")
    wider = policy.with_allowed(["dailyclarion.com"])
    assert wider.check_url("https://news.dailyclarion.com/")
    assert policy.allowed_domains == ["gov"]  # the original is unchanged


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.com/x", "only http and https"),
        ("https://user:pw@example.com/", "user name or password"),
        ("https:///nohost", "has no host"),
        ("http://[::1/", "not a valid URL"),
        ("http://127.0.0.1:8080/", "127.0.0.1 is loopback"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
    ],
)
def test_bad_urls_are_refused_in_one_line(url: str, words: str) -> None:
    with pytest.raises(PolicyRefusal) as info:
        NetworkPolicy().check_url(url)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


async def test_every_resolved_address_must_be_public() -> None:
    resolver = static_resolver(
        {"mixed.example": ["93.184.216.34", "10.0.0.7"], "ok.example": "93.184.216.34"}
    )
    policy = NetworkPolicy(resolver=resolver)
    target = await policy.resolve("https://ok.example:8443/a?b=1")
    assert (target.host, target.port, target.addresses) == ("ok.example", 8443, ("93.184.216.34",))
    with pytest.raises(PolicyRefusal) as info:
        await policy.resolve("https://mixed.example/")
    assert str(info.value) == (
        "refused https://mixed.example/: mixed.example resolves to 10.0.0.7, which is private; "
        "set network.allow_private_addresses = true to allow it"
    )
    allowed = NetworkPolicy(resolver=resolver, allow_private_addresses=True)
    assert (await allowed.resolve("https://mixed.example/")).addresses[1] == "10.0.0.7"


async def test_a_name_that_does_not_resolve_is_a_resolve_error_not_a_refusal() -> None:
    from openmanus_tui.research.policy import ResolveError

    policy = NetworkPolicy(resolver=static_resolver({}))
    with pytest.raises(ResolveError, match="does not resolve"):
        await policy.resolve("https://nowhere.example/")


def test_network_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENMANUS_NETWORK__BLOCKED_DOMAINS", '["*.Ads.Example", "tracker.test."]')
    monkeypatch.setenv("OPENMANUS_NETWORK__ALLOW_PRIVATE_ADDRESSES", "true")
    settings = load_settings()
    assert settings.network.blocked_domains == ["ads.example", "tracker.test"]
    policy = NetworkPolicy.from_settings(settings.network)
    assert policy.allow_private_addresses is True
    with pytest.raises(PolicyRefusal):
        policy.check_url("https://x.ads.example/")


def test_a_url_in_a_domain_list_is_one_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENMANUS_NETWORK__ALLOWED_DOMAINS", '["https://example.com/"]')
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("environment variable OPENMANUS_NETWORK__ALLOWED_DOMAINS")
    assert "not a domain" in message and "\n" not in message


def test_hosts_setting_checks_its_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENMANUS_NETWORK__HOSTS", '{"intranet.test": "not-an-ip"}')
    with pytest.raises(ConfigError, match="not an IP address"):
        load_settings()


def test_config_validate_checks_the_domain_list(tmp_path: Path) -> None:
    from conftest import cli

    bad = tmp_path / "domains.toml"
    bad.write_text('[classes]\nnews = "bbc.co.uk"\n')
    done = cli("config", "validate", env={"OPENMANUS_SOURCES__DOMAINS_FILE": str(bad)})
    assert done.returncode == 2
    assert done.stderr.startswith(f"openmanus: {bad}: classes.news: expected a list of domains")
    bad.write_text('[classes]\nnews = ["bbc.co.uk"]\n')
    ok = cli("config", "validate", env={"OPENMANUS_SOURCES__DOMAINS_FILE": str(bad)})
    assert ok.returncode == 0, ok.stderr


def test_the_research_package_is_core_and_cheap_to_import() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import openmanus_tui.research, openmanus_tui.research.service\n"
        "import openmanus_tui.tools.web_fetch\n"
        "print(sorted(m.split('.')[0] for m in sys.modules\n"
        "             if m.split('.')[0] in ('textual', 'trafilatura', 'pypdf', 'htmldate')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # no Textual; the extractors load at the first fetch


async def test_numeric_and_international_host_spellings() -> None:
    policy = NetworkPolicy()  # the system resolver: numeric forms resolve without any DNS
    for url in ("http://2130706433/", "http://0x7f.1/", "http://127.1/"):
        with pytest.raises(PolicyRefusal, match=r"resolves to 127\.0\.0\.1, which is loopback"):
            await policy.resolve(url)
    idn = NetworkPolicy(blocked_domains=["xn--bcher-kva.example"])
    with pytest.raises(PolicyRefusal, match="blocked domain"):
        idn.check_url("https://www.Bücher.example/")
