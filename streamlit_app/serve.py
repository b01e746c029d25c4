"""Start the app, or refuse before starting it: `python -m streamlit_app.serve [streamlit run options]`.

Reads what `streamlit run` would (the options given, STREAMLIT_* variables, .streamlit/config.toml,
the secrets files) with Streamlit's own parser and config loader, decides the mode as the app
does (streamlit_app/access.py) and exits 2 with a one-line reason when it would refuse: no
sign-in configured on an address other machines can reach, or an incomplete sign-in
configuration. Otherwise it becomes `streamlit run streamlit_app/app.py [options]`, run from the
repository (so its .streamlit/ configuration applies). The app checks again on every run.

    python -m streamlit_app.serve --server.address 127.0.0.1   # local mode (scripts/demo.sh)
    python -m streamlit_app.serve --server.port 8501            # sign-in configured in secrets.toml
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "streamlit_app" / "app.py"


def check(argv: list[str]) -> tuple[bool, str]:
    """(allowed, one line saying what the app will do or why it will not start)."""
    import click
    from streamlit import config
    from streamlit.errors import StreamlitSecretNotFoundError
    from streamlit.runtime.secrets import secrets_singleton
    from streamlit.web import bootstrap, cli

    from streamlit_app.access import Mode, decide
    from streamlit_app.signin import secrets_tables

    try:
        params = cli.main_run.make_context("run", [str(APP), *argv]).params
    except click.ClickException as error:  # unknown options, bad values: one line, not click's usage
        return False, f"bad streamlit run options: {error.format_message()}"
    except click.exceptions.Exit:  # --help: click printed streamlit run's options
        return False, "the options above are streamlit run's (without the script)"
    if params.get("args"):
        return False, f"unexpected arguments: {' '.join(params['args'])}"
    bootstrap.load_config_options({k: v for k, v in params.items() if k not in ("target", "args")})
    try:
        auth, roles = secrets_tables(secrets_singleton)
    except StreamlitSecretNotFoundError as error:
        return False, f"a secrets file cannot be read: {error}"
    address = config.get_option("server.address")
    decision = decide(auth, roles, address)
    if decision.mode is Mode.REFUSED:
        return False, decision.reason
    if decision.mode is Mode.LOCAL:
        return True, f"local mode: no sign-in, only this machine can connect ({address})"
    return True, f"sign-in with {auth['server_metadata_url']}, roles from the {decision.roles.claim!r} claim"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.chdir(REPO)  # .streamlit/config.toml and secrets.toml are read from the working directory
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    allowed, message = check(argv)
    if not allowed:
        print(f"prrt app: not starting: {message}", file=sys.stderr)
        return 2
    print(f"prrt app: {message}", file=sys.stderr, flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(APP), *argv])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
