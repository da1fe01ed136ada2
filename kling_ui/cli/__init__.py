"""The command line: ``python -m kling_ui COMMAND``, one of generate, batch, extend, resume,
status, history, prompt and models (``--list-models`` is ``models``).

Same environment variables as the app (``AIMLAPI_KEY``, ``AIMLAPI_BASE_URL``,
``KLING_UI_DATA_DIR``, ...), same checks, same runner and ledger; with no key, the demo
simulator, said on the first line. Words for people go to stderr (our errors'
``user_message``, never a traceback); stdout carries only what a script wants: the saved
videos' paths, one a line, or ``--json``.

Exit codes (``commands``): 0 done; 1 the vendor failed the job (or refused the request);
2 bad input, nothing sent; 3 the key, the account's credits or a budget refused it; 4 the
outcome is not known here (stopped watching with Ctrl-C, or past the watching deadline; the
id is printed, and ``resume`` goes on).
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import errors
from ..config import BadSetting, settings_from_env
from ..service import MAX_BATCH, MAX_TAKES
from .commands import BAD_INPUT, REFUSED, UNKNOWN, Cli, prompt
from .display import printable

PROG = "python -m kling_ui"
FIT_REMEDY = "Give --fit crop or --fit pad to fit it, or use another image."


# Over 60 lines: one declaration a command and option, in the order --help shows them; split
# up, the help's order would be spread over functions.
def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG,
        description="kling-ui from the command line: image to video with Kling v2.6 Pro "
        "(AIML API). With no AIMLAPI_KEY, a local simulator stands in (demo mode).",
        epilog="Exit codes: 0 done, 1 the job failed, 2 bad input (nothing sent), 3 key, "
        "credits or budget refused, 4 outcome not known here (resume by the printed id).",
    )
    top.add_argument("--demo", action="store_true", help="use the local simulator even with a key")
    top.add_argument("--verbose", action="store_true", help="log what the app logs, on stderr")
    top.add_argument(
        "--list-models", action="store_true", help="list the video models (as `models`) and stop"
    )
    sub = top.add_subparsers(dest="command", metavar="COMMAND")

    gen = sub.add_parser("generate", help="turn one image into a video")
    gen.add_argument(
        "image", nargs="?", default=None,
        help="an image file (JPEG, PNG, WebP, GIF, BMP) or an https link (none for a model "
        "that makes video from text)",
    )  # fmt: skip
    gen.add_argument("--prompt", "-p", required=True, help="the motion you want")
    gen.add_argument("--negative-prompt", default="", help="what to avoid")
    _model_options(gen)
    gen.add_argument("--end-image", default=None, help="the last frame, for a model that takes one")
    gen.add_argument(
        "--reference", action="append", default=[], metavar="IMAGE", dest="references",
        help="a reference image, for a model that takes them (repeatable; sent in order)",
    )  # fmt: skip
    _sending(gen)
    gen.add_argument("--no-audio", action="store_true", help="no generated audio")
    gen.add_argument(
        "--takes", type=int, default=1, help=f"videos of the same image and prompt (1-{MAX_TAKES})"
    )
    gen.set_defaults(run=Cli.generate)

    batch = sub.add_parser(
        "batch",
        help="a CSV file of videos",
        description="Each row: image,prompt[,negative_prompt,duration,generate_audio,takes]. "
        "Images are paths relative to the file, or https links (empty for a model that makes "
        "video from text); a header row is allowed. One model for the whole file (--model), "
        "its other fields by --set, which win over a row's. "
        f"Every row is checked before anything is sent (at most {MAX_BATCH} videos).",
    )
    batch.add_argument("file", help="the CSV file")
    _model_options(batch)
    _sending(batch)
    batch.set_defaults(run=Cli.batch)

    extend = sub.add_parser(
        "extend",
        help="the next part of a finished video, from its last frame; saves the whole chain",
    )
    extend.add_argument("id", help="the finished video's id (or the start of it)")
    extend.add_argument("--prompt", "-p", required=True, help="what happens next")
    extend.add_argument("--negative-prompt", default="", help="what to avoid")
    _model_options(extend)
    _sending(extend)
    extend.add_argument("--no-audio", action="store_true", help="no generated audio")
    extend.set_defaults(run=Cli.extend)

    resume = sub.add_parser("resume", help="watch a job to its end and save its video")
    resume.add_argument("id", help="the generation id (or the start of it, as history prints)")
    resume.add_argument("--out", "-o", default=".", help="folder for the video (default: here)")
    resume.set_defaults(run=Cli.resume)

    status = sub.add_parser("status", help="one look at a job; exits as the job would")
    status.add_argument("id", help="the generation id (or the start of it)")
    status.add_argument("--json", action="store_true", help="as JSON on stdout")
    status.set_defaults(run=Cli.status)

    history = sub.add_parser("history", help="the latest jobs, from the app's ledger too")
    history.add_argument("--limit", "-n", type=_count, default=20, help="how many (default 20)")
    history.add_argument("--json", action="store_true", help="as JSON on stdout")
    history.set_defaults(run=Cli.history)

    helper = sub.add_parser(
        "prompt",
        help="a better prompt for an image, by a chat model that sees it (a fraction of a "
        "cent on a real key; no video is made)",
        description="Prints the suggested prompt on stdout (and, where the model takes one, a "
        "suggested negative prompt on a second line starting 'Negative:'); its price on stderr.",
    )
    helper.add_argument(
        "image",
        nargs="?",
        default=None,
        help="the image (none for a model that makes video from text)",
    )
    helper.add_argument("--prompt", "-p", default="", help="the prompt to improve (optional)")
    helper.add_argument("--model", "-m", default="", help="the video model it is for")
    helper.add_argument(
        "--variant", choices=("improve", "cinematic", "motion", "shorter"), default="improve",
        help="how: improve (default), more cinematic, describe the motion only, or shorter",
    )  # fmt: skip
    helper.set_defaults(run=prompt)

    models = sub.add_parser("models", help="the video models this app can use (free)")
    models.add_argument("--json", action="store_true", help="as JSON on stdout")
    models.set_defaults(run=Cli.models)
    return top


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number, 1 or more, not {text!r}")
    return value


def _model_options(parser: argparse.ArgumentParser) -> None:
    """--model and --set: another video model and its own fields."""
    parser.add_argument(
        "--model", "-m", default="",
        help="the video model (default: Kling v2.6 Pro image to video; `models` lists them)",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", dest="options",
        help="one of the model's other fields (repeatable; `models --json` and /model_schema "
        "name them), e.g. --set seed=7",
    )  # fmt: skip


def _sending(cmd: argparse.ArgumentParser) -> None:
    """The options of every command that sends."""
    cmd.add_argument(
        "--duration", "-d", type=int, default=5,
        help="seconds: 5 or 10 (default 5; another model's own, `models --json` lists them)",
    )  # fmt: skip
    cmd.add_argument(
        "--fit", choices=("reject", "crop", "pad"), default="reject",
        help="an image outside 1:2.5 to 2.5:1: refuse it (default), crop or pad it",
    )  # fmt: skip
    cmd.add_argument("--out", "-o", default=".", help="folder for the videos (default: here)")
    cmd.add_argument("--dry-run", action="store_true", help="check and price; send nothing")
    cmd.add_argument("--yes", "-y", action="store_true", help="don't ask before spending")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    overrides: dict[str, object] = {"require_user_key": False}  # the key here is the user's own
    if args.demo:
        overrides["demo"] = True
    try:
        settings = settings_from_env(**overrides)
    except BadSetting as exc:
        print(f"kling-ui: {exc}", file=sys.stderr)
        return BAD_INPUT
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("urllib3", "httpx", "httpcore", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.verbose:  # the runner's own notes would interleave with the progress bars
        logging.getLogger("kling_ui").setLevel(logging.ERROR)
    cli = Cli(settings, interactive=sys.stdin.isatty())
    if args.command in ("generate", "batch", "extend", "resume", "prompt"):
        cli.mode_line()
    try:
        return args.run(cli, args)
    except errors.RatioOutOfRange as exc:  # here the remedy is an option
        print(errors.RatioOutOfRange(exc.facts, FIT_REMEDY).user_message, file=sys.stderr)
        return BAD_INPUT
    except errors.KlingUIError as exc:
        print(printable(exc.user_message), file=sys.stderr)
        return _code(exc)
    except KeyboardInterrupt:  # before the watching began
        if cli.handed:  # the jobs are the runner's: named, the unsent cancelled
            return cli.stopped()
        if args.command == "prompt":  # the question may have left: said as it is
            print("Stopped; a suggestion asked for may still be charged (a fraction of a "
                  "cent). No video was made.", file=sys.stderr)  # fmt: skip
        else:
            print("Stopped; nothing was sent.", file=sys.stderr)
        return BAD_INPUT
    finally:
        cli.close()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The arguments; ``--list-models`` alone is the ``models`` command."""
    top = parser()
    args = top.parse_args(argv)
    if args.list_models:
        args.command, args.run, args.json = "models", Cli.models, False
    elif args.command is None:
        top.error("a COMMAND is needed (or --list-models)")
    return args


def _code(exc: errors.KlingUIError) -> int:
    if isinstance(exc, (errors.AuthenticationError, errors.OutOfCreditsError, errors.LimitReached)):
        return REFUSED
    if isinstance(exc, (errors.InputError, errors.NotFoundError)):
        return BAD_INPUT
    return UNKNOWN
