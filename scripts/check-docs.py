#!/usr/bin/env python3
"""Every reference in Roost's documentation must resolve inside the repository.

Checks README.md, ARCHITECTURE.md, docs/*.md, scripts/bench/README.md and the comments of
config/roost.toml for
  - relative Markdown links, [text](path) or [text](path#anchor): the path must exist,
    relative to the file that holds the link, and an anchor into a Markdown file (or into
    the same file, [text](#anchor)) must be one of its headings, as GitHub names them;
  - backticked repository paths, `src/edge/drain.rs`, `scripts/bench/chat.sh:12`,
    `systemd/roost-backup.{service,timer}`: a name whose first part is a top-level entry of the
    repository, or a Markdown file name, must exist (relative to the repository root or to
    the file);
  - Markdown file names in plain text too (see PRODUCT.md), code blocks included;
  - configuration keys, `section.key` or `[section] key`: a key of a section that
    config/roost.toml has must be in that section (a dotted name that the code spells as a
    string, such as the audit event `backup.started`, is not a key);
and that README.md links every document in docs/, so none is out of a newcomer's reach.
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
# `web/node_modules`: npm's output inside a source directory.
BUILD_OUTPUT_ANYWHERE = re.compile(r"(^|/)node_modules(/|$)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# `livekit.node_ip`, `rate_limits.login.burst`; `[webhooks] delivery_log_days`.
DOTTED_KEY = re.compile(r"`([a-z_]+(?:\.[a-z_]+)*)\.([a-z_0-9]+)`")
BRACKETED_KEY = re.compile(r"`\[([a-z_.]+)\] ([a-z_0-9]+)`")
# `chat.sh` is a script, not the key `sh` of [chat].
FILE_SUFFIX = re.compile(
    r"\.(sh|py|rs|md|toml|json|txt|mjs|ts|tsx|png|csv|yaml|crt|key|service|timer)$"
)


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
    if token.startswith(BUILD_OUTPUT) or BUILD_OUTPUT_ANYWHERE.search(token):
        return None
    if MEDIA_TYPE.match(token):
        return None
    first = token.split("/", 1)[0]
    if "/" in token and first in top:
        return token.rstrip("/")
    if "/" not in token and token.endswith(".md"):
        return token
    return None


def slug(heading):
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


ANCHORS = {}


def anchors(path):
    """Every heading anchor of a Markdown file; a repeated heading gets -1, -2, ..."""
    path = path.resolve()
    if path not in ANCHORS:
        found, seen, in_code_block = set(), {}, False
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("```"):
                in_code_block = not in_code_block
            heading = None if in_code_block else HEADING.match(line)
            if heading:
                base = slug(heading[2])
                count = seen.get(base, 0)
                seen[base] = count + 1
                found.add(base if count == 0 else f"{base}-{count}")
        ANCHORS[path] = found
    return ANCHORS[path]


def check_link(doc, where, target, problems):
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):
        return  # a URL or mailto:
    path, _, anchor = target.partition("#")
    if path and not exists(path, doc.parent):
        problems.append(f"{where}: link to '{target}', which is not in the repository")
        return
    file = (doc.parent / path) if path else doc
    if anchor and file.suffix == ".md" and file.is_file() and anchor not in anchors(file):
        file_name = path or "this file"
        problems.append(f"{where}: link to '{target}', which names no heading of {file_name}")


def config_keys():
    """The keys config/roost.toml documents, by section (commented-out defaults included)."""
    keys, section = {}, None
    for line in (REPO / "config/roost.toml").read_text(encoding="utf-8").splitlines():
        table = re.match(r"^\[([a-z_.]+)\]", line)
        if table:
            section = keys.setdefault(table[1], set())
        else:
            key = re.match(r"^#?([a-z_0-9]+) = ", line)
            if key and section is not None:
                section.add(key[1])
    return keys


KEYS = config_keys()
CODE_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "src").rglob("*.rs")))


def check_keys(where, text, problems):
    for match in DOTTED_KEY.finditer(text):
        section, key = match[1], match[2]
        name = f"{section}.{key}"
        if section not in KEYS or key in KEYS[section]:
            continue
        if FILE_SUFFIX.search(name) or f'"{name}"' in CODE_TEXT:
            continue  # a file (`chat.sh`) or a name the code uses (`backup.started`)
        problems.append(f"{where}: {match[0]} is not a key of [{section}] in config/roost.toml")
    for match in BRACKETED_KEY.finditer(text):
        section, key = match[1], match[2]
        if key not in KEYS.get(section, set()):
            problems.append(f"{where}: {match[0]} is not a key of [{section}] in config/roost.toml")


def check_line(doc, number, text, top, problems, links=True):
    where = f"{doc.relative_to(REPO)}:{number}"
    # Names inside links and backticks are checked below, once.
    check_plain(doc, number, BACKTICKED.sub("", MARKDOWN_LINK.sub("", text)), problems)
    check_keys(where, text, problems)
    if links:
        for target in MARKDOWN_LINK.findall(text):
            check_link(doc, where, target, problems)
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
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    linked = {t.split("#", 1)[0] for t in MARKDOWN_LINK.findall(readme)}
    for doc in sorted((REPO / "docs").glob("*.md")):
        if f"docs/{doc.name}" not in linked:
            problems.append(f"README.md: no link to docs/{doc.name}")
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
