#!/usr/bin/env python3
"""Every reference in Roost's documentation must resolve inside the repository.

Checks README.md, ARCHITECTURE.md, docs/*.md, scripts/bench/README.md and the comments of
config/roost.toml for
  - relative Markdown links, [text](path) or [text](path#anchor): the path must exist,
    relative to the file that holds the link;
  - backticked repository paths, `src/edge/drain.rs`, `scripts/bench/chat.sh:12`,
    `systemd/roost-backup.{service,timer}`: a name whose first part is a top-level entry of the
    repository, or a Markdown file name, must exist (relative to the repository root or to
    the file);
  - Markdown file names in plain text too (see PRODUCT.md), code blocks included.
Not checked: URLs, absolute paths (/etc/roost/roost.toml: the installed system), names with
placeholders or globs (<data_dir>/backups, roost-*.img, $CARGO_TARGET_DIR/...) and build output
(target/...).

    scripts/check-docs.py        exits 1 and lists each broken reference as FILE:LINE: ...

Python 3 standard library only.
"""

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
BACKTICKED = re.compile(r"`([^`\s]+)`")
# A Markdown file name written as plain text, not the end of a URL or of a longer path.
PLAIN_MARKDOWN_NAME = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
# `name.{a,b}`: one alternative set, as a shell would expand it.
BRACES = re.compile(r"^([^{}]*)\{([^{}]+)\}([^{}]*)$")
# Characters that mark a placeholder, a glob or a command rather than a path.
NOT_A_PATH = set("<>$*{}[]?|=,;'\"()@~")
# `image/png` is a media type, not the image/ directory.
MEDIA_TYPE = re.compile(r"^(application|audio|font|image|text|video)/([\w+-]+|(vnd|x)[.-][\w.+-]+)$")
# Directories that only hold build output, never anything a document may point at.
BUILD_OUTPUT = ("target/", "node_modules/", "dist/")


def documents():
    files = [REPO / "README.md", REPO / "ARCHITECTURE.md", REPO / "scripts/bench/README.md"]
    files += sorted((REPO / "docs").glob("*.md"))
    return [f for f in files if f.exists()]


def top_level_entries():
    return {p.name for p in REPO.iterdir() if p.name != ".git"}


def exists(name, relative_to):
    """Whether `name` is a file or directory of the repository, from the root or the file."""
    for base in (REPO, relative_to):
        path = (base / name).resolve()
        if path.exists() and (path == REPO or REPO in path.parents):
            return True
    return False


def candidate_path(token, top):
    """The repository path a backticked token names, or None when it names none."""
    if "://" in token or token.startswith(("/", "-", ".")) and not token.startswith((".ci/", ".cargo/")):
        return None
    if any(c in NOT_A_PATH for c in token):
        return None
    # `file.rs:149` and `file.rs:12-20` point at lines.
    token = re.sub(r":\d+(-\d+)?$", "", token)
    # `tests/roost/web.rs::a_test_name` names an item in a file.
    token = re.sub(r"::[\w:]+$", "", token)
    if token.startswith(BUILD_OUTPUT) or MEDIA_TYPE.match(token):
        return None
    first = token.split("/", 1)[0]
    if "/" in token and first in top:
        return token.rstrip("/")
    if "/" not in token and token.endswith(".md"):
        return token
    return None


def check_line(doc, number, text, top, problems, links=True):
    where = f"{doc.relative_to(REPO)}:{number}"
    # Names inside links and backticks are checked below, once.
    check_plain(doc, number, BACKTICKED.sub("", MARKDOWN_LINK.sub("", text)), problems)
    if links:
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL, mailto:, or an anchor in the same file
            path = target.split("#", 1)[0]
            if path and not exists(path, doc.parent):
                problems.append(f"{where}: link to '{target}', which is not in the repository")
    for token in BACKTICKED.findall(text):
        braces = BRACES.match(token)
        names = [braces[1] + alt + braces[3] for alt in braces[2].split(",")] if braces else [token]
        if any(
            (path := candidate_path(name, top)) is not None and not exists(path, doc.parent)
            for name in names
        ):
            problems.append(f"{where}: `{token}` names a file that is not in the repository")


def check_plain(doc, number, text, problems):
    for name in PLAIN_MARKDOWN_NAME.findall(text):
        if not exists(name, doc.parent):
            problems.append(
                f"{doc.relative_to(REPO)}:{number}: {name} is not in the repository"
            )


def main():
    top = top_level_entries()
    problems = []
    for doc in documents():
        in_code_block = False
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_code_block = not in_code_block
                continue
            # Code blocks hold commands and output, not Markdown: only file names are checked.
            if in_code_block:
                check_plain(doc, number, line, problems)
            else:
                check_line(doc, number, line, top, problems)
    config = REPO / "config/roost.toml"
    for number, line in enumerate(config.read_text(encoding="utf-8").splitlines(), 1):
        comment = line.partition("#")[2] if line.lstrip().startswith("#") else ""
        if comment:
            check_line(config, number, comment, top, problems, links=False)
    for problem in problems:
        print(problem)
    if problems:
        print(f"check-docs: {len(problems)} reference(s) that do not resolve inside the repository",
              file=sys.stderr)
        return 1
    print(f"check-docs: every reference in {len(documents()) + 1} files resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
