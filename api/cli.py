"""The `medkb` command line. Errors are one line each (file, field, message), never a traceback."""
import sys
from pathlib import Path

import click
import orjson

from .knowledge import DocumentFileError, canonical_bytes, load_document, load_set, read_document_file
from .files import atomic_write


def fail(message):
    click.echo(message, err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """medkb: the medication knowledge base and its API."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths):
    """Check documents (files or folders, default content/): schemas, references, file names."""
    paths = paths or (Path("content"),)
    missing = [p for p in paths if not p.exists()]
    if missing:
        fail("\n".join(f"{p}: no such file or folder" for p in missing))
    loaded = load_set(paths)
    for problem in loaded.problems:
        click.echo(str(problem))
    if loaded.problems:
        click.echo(f"{len(loaded.problems)} problem(s) in {loaded.files_seen} file(s).", err=True)
        sys.exit(1)
    if not loaded.documents:
        fail(f"{', '.join(map(str, paths))}: no JSON documents found")
    click.echo(f"{len(loaded.documents)} valid documents.")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def migrate(paths):
    """Rewrite older-format documents in place in the current format."""
    from .knowledge import json_files

    paths = paths or (Path("content"),)
    migrated, problems = 0, []
    for path in json_files(paths):
        try:
            raw = read_document_file(path)
        except DocumentFileError as error:
            problems.append(f"{path}: {error}")
            continue
        document, errors = load_document(raw)
        if errors:
            # An invalid file is left exactly as it was: a migration never writes a bad document.
            problems.extend(f"{path}: {field}: {message}" for field, message in errors)
        elif document is not raw:
            atomic_write(path, canonical_bytes(document))
            migrated += 1
            click.echo(f"{path}: migrated to schema_version {document['schema_version']}")
    for problem in problems:
        click.echo(problem)
    click.echo(f"{migrated} file(s) migrated.", err=True)
    sys.exit(1 if problems else 0)


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("schemas/json"), show_default=True)
def schema(out):
    """Write a JSON Schema per document type, for validation in editors."""
    from .jsonschema import document_json_schemas

    out.mkdir(parents=True, exist_ok=True)
    for type_name, json_schema in document_json_schemas().items():
        target = out / f"{type_name}.schema.json"
        atomic_write(target, orjson.dumps(json_schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        click.echo(str(target))


if __name__ == "__main__":
    main()
