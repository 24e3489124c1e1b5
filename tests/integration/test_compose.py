"""docker-compose.yml parses and wires every setting the Kafka deployment needs (it cannot run here)."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
REQUIRED = {"SAFEGUARD_KAFKA_BOOTSTRAP", "SAFEGUARD_DATABASE_URL", "SAFEGUARD_CONFIG"}


def test_compose_runs_kafka_postgres_two_workers_and_the_api_with_health_checks() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"kafka", "postgres", "worker-1", "worker-2", "api"} <= set(services)
    for name in ("kafka", "postgres", "api"):
        assert services[name]["healthcheck"]["test"]
    for name in ("worker-1", "worker-2", "api"):
        env = services[name]["environment"]
        assert set(env) >= REQUIRED
        assert all(key.removeprefix("SAFEGUARD_").lower() in Settings.model_fields for key in env)
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["worker-1"]["command"] == ["safeguard", "worker"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
