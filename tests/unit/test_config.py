import pytest

from cti import config
from cti.config import ConfigError, load


def problems_of(toml_text: str, tmp_path, environ=None) -> list[str]:
    path = tmp_path / "cti.toml"
    path.write_text(toml_text)
    with pytest.raises(ConfigError) as caught:
        load(path, environ or {})
    return caught.value.problems


def test_defaults_are_valid():
    settings = load(None, {})
    assert settings.http.port == 8080
    assert settings.database.dsn == ""  # embedded cluster
    assert settings.ami_servers() == {}


def test_bad_port_names_key_value_and_expectation(tmp_path):
    assert problems_of('[ami]\nport = "abc"\n', tmp_path) == ["ami.port: expected an integer 1-65535, got 'abc'"]


def test_every_problem_is_reported_at_once(tmp_path):
    problems = problems_of('[http]\nport = 70000\nprot = 1\n[log]\nlevel = "loud"\n', tmp_path)
    assert "http.port: expected an integer 1-65535, got 70000" in problems
    assert any(p.startswith("http.prot: unknown setting") for p in problems)
    assert "log.level: expected one of 'debug', 'info', 'warning', 'error', got 'loud'" in problems


def test_environment_overrides_file(tmp_path):
    path = tmp_path / "cti.toml"
    path.write_text("[http]\nport = 8000\n")
    assert load(path, {"CTI_HTTP__PORT": "9000"}).http.port == 9000


def test_environment_value_is_validated():
    with pytest.raises(ConfigError) as caught:
        load(None, {"CTI_AGI__MAX_SESSIONS": "0"})
    assert caught.value.problems == ["agi.max_sessions: expected an integer >= 1, got '0'"]


def test_unrelated_cti_variables_are_ignored():
    assert load(None, {"CTI_CONFIG": "x.toml", "CTI_SOMETHING": "1"}).data_dir == "var"


def test_ami_servers_inherit_section_defaults(tmp_path):
    path = tmp_path / "cti.toml"
    path.write_text('[ami]\nusername = "ctiuser"\nping_interval = 2\n'
                    '[ami.servers.pbx1]\nhost = "10.0.0.1"\n[ami.servers.pbx2]\nhost = "10.0.0.2"\nport = 5039\n')
    servers = load(path, {"CTI_AMI__SERVERS__PBX1__SECRET": "s1"}).ami_servers()
    assert servers["pbx1"].username == "ctiuser" and servers["pbx1"].ping_interval == 2
    assert servers["pbx1"].secret == "s1"
    assert (servers["pbx2"].host, servers["pbx2"].port) == ("10.0.0.2", 5039)


def test_bad_server_setting_names_the_server(tmp_path):
    problems = problems_of('[ami.servers.pbx1]\nauth = "kerberos"\n', tmp_path)
    assert problems == ["ami.servers.pbx1.auth: expected one of 'md5', 'plain', got 'kerberos'"]


def test_secret_values_never_appear_in_errors_or_dumps(tmp_path):
    problems = problems_of('[database]\ndsn = 42\n', tmp_path)
    assert problems == ["database.dsn: expected a string, got ***"]
    dumped = config.redacted(load(None, {"CTI_AMI__SECRET": "hunter2", "CTI_LAB__ENABLED": "1"}))
    assert "hunter2" not in repr(dumped) and dumped["ami"]["secret"] == "***"


def test_lab_adds_its_server():
    servers = load(None, {"CTI_LAB__ENABLED": "true", "CTI_LAB__AMI_PORT": "15038"}).ami_servers()
    assert servers["lab"].port == 15038 and servers["lab"].host == "127.0.0.1"


def test_cross_field_check(tmp_path):
    problems = problems_of("[database]\npool_min = 20\npool_max = 5\n", tmp_path)
    assert problems == ["database.pool_min: expected at most database.pool_max (5), got 20"]


def test_invalid_toml_says_where(tmp_path):
    problems = problems_of("[http\nport = 1\n", tmp_path)
    assert len(problems) == 1 and "not valid TOML" in problems[0] and "line 1" in problems[0]


def test_example_file_documents_every_key():
    """config/cti.example.toml loads, and names every setting of the Config tree."""
    from tests.conftest import REPO_ROOT
    example = REPO_ROOT / "config" / "cti.example.toml"
    load(example, {})
    text = example.read_text()
    for section, fields in config.redacted(load(None, {})).items():
        if isinstance(fields, dict):
            for key, value in fields.items():
                if not isinstance(value, dict):  # named tables: documented as examples
                    assert f"{key} =" in text, f"{section}.{key} is not documented"


def test_country_must_be_an_iso_code():
    with pytest.raises(ConfigError) as caught:
        load(None, {"CTI_CRM__DEFAULT_COUNTRY": "germany"})
    assert caught.value.problems == ["crm.default_country: expected a string matching ^[A-Z]{2}$, got 'germany'"]


def test_webhooks_are_named_tables_needing_url_and_secret():
    settings = load(None, {"CTI_CRM__WEBHOOKS__BILLING__URL": "https://crm.example/hook",
                           "CTI_CRM__WEBHOOKS__BILLING__SECRET": "k"})
    assert settings.crm.webhooks["billing"].url == "https://crm.example/hook"
    with pytest.raises(ConfigError) as caught:
        load(None, {"CTI_CRM__WEBHOOKS__BILLING__URL": "https://crm.example/hook"})
    assert caught.value.problems == ["crm.webhooks.billing: expected both url and secret, got no secret"]
