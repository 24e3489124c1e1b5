"""The `safeguard` command. Exit codes: 0 success, 1 a reported failure, 2 a usage error or a configuration the
process cannot start with (one line, ``cannot start: ...``).

Output never carries personal data: counts, ids, row numbers and reasons only.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from pipeline.codec import EVENT_TYPES
from pipeline.domain.model import Role
from pipeline.settings import ConfigurationError, Settings

ROLES = ", ".join(r.value for r in Role)
KINDS = "schools, pupils, ehe, involvements, teams"

# An uncaught error's traceback never shows local variables: they can hold a child's details.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Safeguarding partnership pipeline.")
users_app = typer.Typer(no_args_is_help=True, help=f"Manage users. Roles: {ROLES}.")
app.add_typer(users_app, name="users")
match_app = typer.Typer(no_args_is_help=True, help="The matcher: train it, measure it, make a labelled set.")
app.add_typer(match_app, name="match")
events_app = typer.Typer(no_args_is_help=True, help="Events whose processing failed, and dead letters.")
app.add_typer(events_app, name="events")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _port_free(host: str, port: int) -> None:
    """One clear line and exit 1 when the port is taken, instead of a server traceback."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn binds: a connection of a killed predecessor still closing on this port is no obstacle.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise _fail(f"cannot listen on {host}:{port}: {error.strerror or 'address not available'} "
                        f"(is another safeguard running? choose another with --port)", 1) from None


@app.command()
def run(demo: Annotated[bool, typer.Option("--demo", help="Load demo data and use minute-scale windows.")] = False,
        host: str = "127.0.0.1", port: int = 8000) -> None:
    """The embedded pipeline, scheduler and web app in one process."""
    _port_free(host, port)
    from pipeline.bootstrap import build, configure_logging
    from pipeline.runtimes.embedded import EmbeddedRuntime

    settings = Settings(demo=demo, public_url=f"http://{host}:{port}")
    configure_logging(settings)
    services = build(settings)
    runtime = EmbeddedRuntime(services)
    if demo:
        from pipeline.entrypoints.demo_setup import seed_demo
        from producers.demo_events import DemoHospital

        for line in seed_demo(services):
            typer.echo(line)
        DemoHospital(services, runtime.stop).start()
    typer.echo(f"Serving on http://{host}:{port}  (Ctrl-C to stop)")
    runtime.serve(host, port)


@app.command()
def worker() -> None:
    """A Kafka stream worker (faust-streaming); needs SAFEGUARD_KAFKA_BOOTSTRAP."""
    settings = Settings()
    if not settings.kafka_bootstrap:
        raise _fail("SAFEGUARD_KAFKA_BOOTSTRAP is not set: the worker needs a Kafka broker", 2)
    from pipeline.bootstrap import build, configure_logging
    from pipeline.runtimes.faust_app import run_worker

    configure_logging(settings)
    run_worker(build(settings))


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000) -> None:
    """The web app and API alone."""
    _port_free(host, port)
    import uvicorn

    from pipeline.bootstrap import build, configure_logging
    from pipeline.entrypoints.api import create_app

    settings = Settings(public_url=f"http://{host}:{port}")
    configure_logging(settings)
    services = build(settings)
    services.ready.set()
    uvicorn.run(create_app(services), host=host, port=port, log_config=None, access_log=False)


@app.command("demo-data")
def demo_data(out: Annotated[Path, typer.Option("--out", help="Directory for the CSVs.")],
              seed: int = 1, pupils: int = 2000) -> None:
    """Write schools, pupils, ehe, involvements and teams CSVs (byte-identical for a seed)."""
    from pipeline.service.demo_data import write_csvs

    if pupils < 1:
        raise _fail("--pupils must be at least 1", 2)
    for kind, path in write_csvs(out, seed=seed, pupils=pupils).items():
        typer.echo(f"{kind}: {path}")


@app.command()
def load(kind: Annotated[str, typer.Argument(help=f"One of: {KINDS}.")],
         file: Annotated[Path, typer.Argument(help="The CSV file: the full current list for its KIND.")],
         allow_ending: Annotated[bool, typer.Option(
             "--allow-ending", help="Load even when the file ends many current rows (more than a quarter, and more "
             "than 50): without it such a file is taken for a partial export and refused.")] = False) -> None:
    """Load reference data: KIND is schools, pupils, ehe, involvements or teams."""
    from pipeline.bootstrap import build, shown_url, system_clock
    from pipeline.service.reference import KINDS, ReferenceError
    from pipeline.service.reference import load as load_reference

    if kind not in KINDS:
        raise _fail(f"unknown kind; use one of {', '.join(KINDS)}", 2)
    if not file.is_file():
        raise _fail(f"no such file: {file}", 2)
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise _fail(f"the file is not UTF-8 (the first character that is not is on row {line}): save it as "
                    "\"CSV UTF-8\" and load it again", 1) from None
    settings = Settings()
    new_database = _sqlite_file_missing(settings.database_url)
    services = build(settings)
    database = shown_url(settings.database_url)
    if new_database:
        typer.echo(f"warning: {database} did not exist and was created: if you meant to load into an existing "
                   "database, check SAFEGUARD_DATABASE_URL", err=True)
    try:
        with services.store.unit_of_work() as port:
            report = load_reference(port, kind, text, system_clock(), services.ctx.policy.routed_teams(),
                                    allow_ending=allow_ending)
    except ReferenceError as error:
        for problem in error.problems[:PROBLEMS_SHOWN]:
            typer.echo(problem, err=True)
        if len(error.problems) > PROBLEMS_SHOWN:
            typer.echo(f"... and {len(error.problems) - PROBLEMS_SHOWN:,} more: {_problems_by_field(error.problems)}",
                       err=True)
        raise _fail(f"nothing loaded: {len(error.problems)} problem(s)", 1) from None
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"{kind}: {report.rows} rows current, {report.ended} ended (into {database})")


PROBLEMS_SHOWN = 100  # a file with the same mistake on every row: the first rows, then the count by field


def _problems_by_field(problems: list[str]) -> str:
    """How many problems each field has, over all of them ("date_of_birth: 2,000 rows; sex: 3 rows")."""
    fields = Counter(problem.split(": ", 2)[1] if problem.count(": ") >= 2 else "the file" for problem in problems)
    return "; ".join(f"{field}: {count:,} rows" for field, count in fields.most_common())


def _sqlite_file_missing(url: str) -> bool:
    """The URL names an SQLite file that does not exist yet (opening the store would create it)."""
    from pipeline.adapters.store import sqlite_file

    path = sqlite_file(url)
    return path is not None and not path.exists()


@users_app.command("add")
def users_add(role: Annotated[str, typer.Option("--role", help=f"One of: {ROLES} (dsl covers deputies too).")],
              email: Annotated[str, typer.Option("--email", help="The user's work email address.")],
              school: Annotated[str | None, typer.Option("--school", help="URN of a loaded school (dsl).")] = None,
              team: Annotated[str | None, typer.Option("--team", help="Code of a loaded team, e.g. FRONT_DOOR "
                                                       "(team).")] = None,
              password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read a web password from "
                                                           "stdin.")] = False) -> None:
    """Create a user; prints an API bearer token alone on the last line."""
    from pipeline.bootstrap import build
    from pipeline.service.users import NotLoadedError, UserError, add_user

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise _fail("--password-stdin given but no password on stdin", 2)
    services = build(Settings())
    try:
        with services.store.unit_of_work() as port:
            user, token = add_user(port, role, email, school, team, password)
    except NotLoadedError as error:
        raise _fail(str(error), 1) from None
    except UserError as error:
        raise _fail(str(error), 1 if "already exists" in str(error) else 2) from None
    typer.echo(f"created {user.role} user {user.id}")
    typer.echo(token)


@users_app.command("list")
def users_list() -> None:
    """Every user: id, role, email, school or team, and whether disabled."""
    from pipeline.adapters.accounts import all_users
    from pipeline.bootstrap import build

    services = build(Settings())
    with services.store.read() as session:
        users = all_users(session)
    typer.echo("id\trole\temail\tschool_or_team\tstate")
    for user in users:
        state = "disabled" if user.disabled_at is not None else "active"
        typer.echo(f"{user.id}\t{user.role}\t{user.email}\t{user.school_urn or user.team or '-'}\t{state}")


@users_app.command("disable")
def users_disable(email: Annotated[str, typer.Option("--email", help="The user's email address.")]) -> None:
    """Disable a user: no more sign-in or API token; their web sessions end now."""
    from pipeline.bootstrap import build, system_clock
    from pipeline.service.users import UserError, disable_user

    services = build(Settings())
    try:
        with services.store.unit_of_work() as port:
            user = disable_user(port, email, system_clock())
    except UserError as error:
        raise _fail(str(error), 1) from None
    typer.echo(f"disabled user {user.id}")


@users_app.command("reset-password")
def users_reset_password(email: Annotated[str, typer.Option("--email", help="The user's email address.")]) -> None:
    """Set a new web password, read from stdin (at least 12 characters); their web sessions end."""
    from pipeline.bootstrap import build, system_clock
    from pipeline.service.users import UserError, reset_password

    password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise _fail("no password on stdin", 2)
    services = build(Settings())
    try:
        with services.store.unit_of_work() as port:
            user = reset_password(port, email, password, system_clock())
    except UserError as error:
        raise _fail(str(error), 2 if "characters" in str(error) else 1) from None
    typer.echo(f"password reset for user {user.id}")


@events_app.command("retry")
def events_retry(event_ids: Annotated[list[str] | None, typer.Argument(help="Held events; none: all held.")] = None
                 ) -> None:
    """Run held events again after a fix; each is processed once. Exit 1 if any still fails."""
    from pipeline.bootstrap import build
    from pipeline.service.retries import retry_events

    services = build(Settings())
    outcomes = retry_events(services.store, services.ctx, services.clock, event_ids or None)
    for outcome in outcomes:
        typer.echo(f"{outcome.event_id}: {outcome.outcome.replace('_', ' ')}")
    failed = [outcome for outcome in outcomes if not outcome.ok]
    already = sum(1 for outcome in outcomes if outcome.outcome == "already_processed")
    typer.echo(f"{len(outcomes) - len(failed) - already} processed, {already} already processed, {len(failed)} not"
               if outcomes else "no held events")
    if failed:
        raise typer.Exit(1)


@events_app.command("held")
def events_held() -> None:
    """List held events: id, type, tries, the last failure's type and since when (no event content)."""
    from pipeline.bootstrap import build
    from pipeline.service.retries import held_events

    services = build(Settings())
    held = held_events(services.store)
    for event in held:
        typer.echo(f"{event.event_id} {event.event_type} tries={event.attempts} error={event.error} "
                   f"held_since={event.held_at.isoformat() if event.held_at else ''}")
    if not held:
        typer.echo("no held events")


@events_app.command("dead-letters")
def events_dead_letters(limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50
                        ) -> None:
    """List the newest dead letters (inputs refused at intake or by a handler): when, from where (http, cli,
    kafka, handler), the event type and id, the producer, and why (fields, never values). The refused bytes stay
    in the database's deadletter table; nothing here prints them."""
    from pipeline.adapters.record_reads import recent_dead_letters
    from pipeline.bootstrap import build

    services = build(Settings())
    with services.store.read() as session:
        lines = [f"{d.received_at.isoformat()} {d.id} source={d.source} type={d.event_type or '-'} "
                 f"event_id={d.event_id or '-'} producer={d.producer_id if d.producer_id is not None else '-'} "
                 f"{d.reason}" for d in recent_dead_letters(session, limit)]
    typer.echo("\n".join(lines) if lines else "no dead letters")


@app.command()
def produce(event_type: Annotated[str, typer.Argument(help=f"One of: {', '.join(EVENT_TYPES)}.")],
            file: Annotated[Path, typer.Argument(help="JSON lines: one event object per line.")]) -> None:
    """Send each JSON line of FILE as an event; bad lines are dead-lettered with their line numbers."""
    from producers.cli_producer import produce_file

    raise typer.Exit(produce_file(Settings(), event_type, file))


@match_app.command("train")
def match_train() -> None:
    """Re-estimate the matcher's m and u from the loaded reference data and the stored events; store a new
    version (every running process picks it up before its next batch)."""
    from pipeline.bootstrap import build, system_clock
    from pipeline.service.match_training import train_stored

    services = build(Settings())
    with services.store.unit_of_work() as port:
        version, trained_on = train_stored(port, services.ctx, system_clock())
    typer.echo(f"model {version}: " + ", ".join(f"{k} {v}" for k, v in sorted(trained_on.items())))


@match_app.command("evaluate")
def match_evaluate(roll: Annotated[Path, typer.Option("--roll", help="Pupils CSV (the contract's columns).")],
                   events: Annotated[Path, typer.Option("--events", help="Events, one JSON object a line.")],
                   truth: Annotated[Path, typer.Option("--truth", help="CSV: event_id, upn (empty: on no roll).")],
                   schools: Annotated[Path | None, typer.Option("--schools", help="Schools CSV (names).")] = None,
                   ) -> None:
    """Precision, recall, F1, review and no-match rates of the matcher on a labelled set (the model is estimated
    on the roll and the events without the labels, at the configured thresholds)."""
    from pipeline.domain.fellegi_sunter import Thresholds
    from pipeline.service.match_training import evaluate_files

    for path in (roll, events, truth, *([schools] if schools else [])):
        if not path.is_file():
            raise _fail(f"no such file: {path.name}", 2)
    try:
        thresholds = Thresholds.from_mapping(Settings().rules.get("matching"))
    except ValueError as error:
        raise ConfigurationError(f"configuration: {error}") from error
    try:
        result = evaluate_files(roll, events, truth, thresholds, schools)
    except (ValueError, KeyError) as error:
        raise _fail(f"cannot read the files ({type(error).__name__}: {error})"
                    if isinstance(error, ValueError) and "truth file" in str(error)
                    else f"cannot read the files ({type(error).__name__})", 1) from None
    for line in result.lines():
        typer.echo(line)


@match_app.command("generate")
def match_generate(out: Annotated[Path, typer.Option("--out", help="Directory for the files.")],
                   seed: int = 1, pupils: int = 4000, events: int = 5000) -> None:
    """A seeded synthetic labelled set: schools.csv, pupils.csv, events.jsonl, truth.csv."""
    from pipeline.service.match_synthetic import write_set

    for kind, path in write_set(out, seed, pupils, events).items():
        typer.echo(f"{kind}: {path}")


def main() -> None:
    try:
        app()
    except ConfigurationError as error:  # one line naming the file or setting, not a traceback
        typer.echo(f"cannot start: {error}", err=True)
        sys.exit(2)
    except ValidationError as error:  # a SAFEGUARD_* variable of the wrong kind (its value is not repeated)
        problems = "; ".join(f"SAFEGUARD_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        typer.echo(f"cannot start: {problems}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
