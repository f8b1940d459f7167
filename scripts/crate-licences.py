#!/usr/bin/env python3
"""Writes the licence texts of every Rust crate linked into the roost binary, for the Debian
package (scripts/build-deb.sh gzips the result into /usr/share/doc/roost/).

    scripts/crate-licences.py TARGET OUTPUT

TARGET is the Rust target triple being packaged. Which crates count comes from `cargo tree
--target TARGET --edges normal,no-proc-macro` (offline: the build before this fetched the
sources): every normal (not build, not dev) dependency of roost for that target, with the
features the build turns on, except procedural macros and what only they depend on, which
run in the compiler and leave no code in the binary. `cargo metadata` says where each one's
source is. A crate's licence texts are the files at the top of its source (as
the cargo registry holds it) named LICENSE*, LICENCE*, COPYING*, NOTICE*, COPYRIGHT*,
UNLICENSE* or PATENTS*, and the file its manifest names in `license-file`.

The web client embedded in the binary comes last: every npm package its lockfile
(web/package-lock.json) has as a dependency of the built client rather than of its build and
tests (not marked "dev"), with the licence files of web/node_modules/<package>/ (installed by
the build, which runs `npm ci`).

A crate or package with no such file fails the run, naming it, unless LICENCE_EXCEPTIONS below has it
with the reason: then its SPDX expression is listed with that reason instead of a text.
The Rust standard library, linked into every Rust binary, comes first: its copyright page
and licence texts from the toolchain that builds roost (`rustc --print sysroot`, installed
with rustup's rustc component). Prints one line of counts on stderr; nothing else.
"""

import html.parser
import json
import subprocess
import sys
from pathlib import Path

BSD_3_CLAUSE = """Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

    * Redistributions of source code must retain the above copyright notice, this list of
      conditions and the following disclaimer.
    * Redistributions in binary form must reproduce the above copyright notice, this list of
      conditions and the following disclaimer in the documentation and/or other materials
      provided with the distribution.
    * Neither the name of {holder} nor the names of its contributors may be used to endorse
      or promote products derived from this software without specific prior written
      permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS
OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE
COPYRIGHT OWNER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL,
EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE
GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED
AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING
NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED
OF THE POSSIBILITY OF SUCH DAMAGE."""

# Crates and npm packages published without any licence file, each with why listing its SPDX expression is
# right: the crate's own sources were checked by hand and carry no licence text to copy.
# Form: "name": "reason", written into the output in place of the text.
LICENCE_EXCEPTIONS: dict[str, str] = {
    # Checked for 0.5.2 (through rcgen): the package on crates.io has no LICENSE-* file,
    # though its source headers point at LICENSE-APACHE and LICENSE-MIT.
    "yasna": "the package on crates.io carries none. Its sources say \"Copyright 2016 Masaki "
    "Hara\", licensed under the Apache License, Version 2.0 or the MIT license, at your "
    "option. Roost takes it under the Apache License, Version 2.0, whose full text is in "
    "/usr/share/common-licenses/Apache-2.0.",
    # Checked for 1.10.1 (npm, through livekit-client): the package has no licence file. Its
    # sources carry "Copyright 2021-2024 Buf Technologies, Inc." under Apache-2.0, and its
    # varint and int64 code "Copyright 2008 Google Inc. All rights reserved." under the
    # BSD-3-Clause licence of Protocol Buffers, whose text follows.
    "@bufbuild/protobuf": "the package on npm carries none. Its sources say \"Copyright "
    "2021-2024 Buf Technologies, Inc.\", licensed under the Apache License, Version 2.0, whose "
    "full text is in /usr/share/common-licenses/Apache-2.0; its varint and 64-bit integer "
    "code says \"Copyright 2008 Google Inc. All rights reserved.\", under this licence:\n\n"
    + BSD_3_CLAUSE.format(holder="Google Inc."),
}

LICENCE_PREFIXES = ("license", "licence", "copying", "notice", "copyright", "unlicense", "patents")
RULE = "=" * 80


def fail(message: str) -> None:
    print(f"crate-licences: {message}", file=sys.stderr)
    sys.exit(1)


def linked_packages(repo: Path, target: str) -> list[dict]:
    """The packages whose code roost's binary links for `target`, roost excluded, by name."""
    # cargo tree resolves features the way the build does (normal edges only, for this target),
    # where cargo metadata would also count features only the dev-dependencies turn on.
    tree = cargo(repo, "tree", "--locked", "--offline", "--target", target,
                 "--edges", "normal,no-proc-macro", "--prefix", "none", "--format", "{p}")
    wanted = set()
    for line in tree.splitlines():
        # "name v1.2.3", then " (*)" for one shown before, or " (/path)" for a local package.
        name, version = line.split()[:2]
        wanted.add((name, version.removeprefix("v")))
    metadata = json.loads(cargo(repo, "metadata", "--locked", "--offline", "--format-version", "1",
                                "--filter-platform", target))
    root = metadata["resolve"]["root"]
    packages = {(p["name"], p["version"]): p for p in metadata["packages"] if p["id"] != root}
    unknown = sorted(f"{n} {v}" for n, v in wanted if (n, v) not in packages and n != "roost")
    if unknown:
        fail(f"cargo tree lists crates cargo metadata does not know: {', '.join(unknown)}")
    return sorted((packages[k] for k in wanted if k in packages),
                  key=lambda p: (p["name"], p["version"]))


def cargo(repo: Path, *args: str) -> str:
    return cargo_tool(repo, "cargo", *args)


def licence_files(package: dict) -> list[Path]:
    source = Path(package["manifest_path"]).parent
    found = sorted(
        f for f in source.iterdir() if f.is_file() and f.name.lower().startswith(LICENCE_PREFIXES)
    )
    named = package.get("license_file")
    if named:
        path = (source / named).resolve()
        if not path.is_file():
            fail(f"{package['name']} {package['version']} names license-file {named}, which is not in its source")
        if path not in [f.resolve() for f in found]:
            found.append(path)
    return found


class _Text(html.parser.HTMLParser):
    """The text of an HTML page, one line per block, for the toolchain's copyright page."""

    BLOCKS = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "pre", "br", "section"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script", "head"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("style", "script", "head"):
            self.skip -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        out, blank = [], False
        for line in lines:
            if line or not blank:
                out.append(line)
            blank = not line
        return "\n".join(out).strip("\n")


def standard_library(repo: Path) -> list[str]:
    """The Rust standard library's notices, linked into every Rust binary: from the rustc
    toolchain component that builds roost (share/doc/rust)."""
    version = cargo_tool(repo, "rustc", "--version").strip()
    docs = Path(cargo_tool(repo, "rustc", "--print", "sysroot").strip()) / "share/doc/rust"
    page, texts = docs / "COPYRIGHT-library.html", [docs / "licenses/Apache-2.0.txt", docs / "licenses/MIT.txt"]
    for path in [page, *texts]:
        if not path.is_file():
            fail(f"the Rust toolchain has no {path}: the standard library's notices come from it")
    parser = _Text()
    parser.feed(page.read_text(encoding="utf-8"))
    parts = ["", RULE, f"The Rust standard library ({version})", "License: MIT OR Apache-2.0",
             f"--- {page.name} (as text)", parser.text()]
    for path in texts:
        parts += [f"--- {path.name}", path.read_text(encoding="utf-8").rstrip("\n")]
    return parts


def web_client_packages(repo: Path) -> tuple[list[str], int]:
    """The npm packages bundled into the web client, with their licence texts."""
    web = repo / "web"
    lock = json.loads((web / "package-lock.json").read_text(encoding="utf-8"))
    shipped = sorted(
        (path, meta) for path, meta in lock.get("packages", {}).items()
        if path.startswith("node_modules/") and not meta.get("dev") and not meta.get("devOptional")
    )
    parts, missing = [], []
    for path, meta in shipped:
        name = path.rsplit("node_modules/", 1)[1]
        source = web / path
        if not source.is_dir():
            fail(f"{source} is missing: the client's packages come from `npm ci` in web/")
        files = sorted(f for f in source.iterdir()
                       if f.is_file() and f.name.lower().startswith(LICENCE_PREFIXES))
        expression = meta.get("license") or "(no licence field; see the files below)"
        parts += ["", RULE, f"{name} {meta.get('version', '?')} (npm, in the web client)",
                  f"License: {expression}"]
        if not files:
            if name not in LICENCE_EXCEPTIONS:
                missing.append(f"{name} {meta.get('version', '?')} ({expression})")
            else:
                parts.append(f"--- no licence file in the package: {LICENCE_EXCEPTIONS[name]}")
            continue
        for f in files:
            parts += [f"--- {f.name}", f.read_bytes().decode("utf-8", errors="replace").rstrip("\n")]
    if missing:
        fail(
            "no licence file in these npm packages bundled into the web client; check each by "
            "hand and name it in LICENCE_EXCEPTIONS with the reason: " + "; ".join(missing)
        )
    return parts, len(shipped)


def cargo_tool(repo: Path, *args: str) -> str:
    return subprocess.run(list(args), cwd=repo, check=True, stdout=subprocess.PIPE,
                          text=True).stdout


def main() -> None:
    if len(sys.argv) != 3:
        fail("usage: scripts/crate-licences.py TARGET OUTPUT")
    target, output = sys.argv[1], Path(sys.argv[2])
    repo = Path(__file__).resolve().parent.parent
    crates = linked_packages(repo, target)
    if not crates:
        fail("no crates found: is the roost package the workspace's root?")

    parts = [
        f"Licences of the Rust code compiled into roost for {target}: the Rust standard",
        "library, then every crate the binary links (procedural macros and build-time tools",
        "excluded), with its SPDX licence expression and the licence files of the source that",
        "was compiled; then the npm packages of the web client embedded in it.",
    ]
    parts += standard_library(repo)
    missing = []
    for crate in crates:
        name, version = crate["name"], crate["version"]
        expression = crate.get("license") or "(no SPDX expression; see the files below)"
        files = licence_files(crate)
        parts += ["", RULE, f"{name} {version}", f"License: {expression}"]
        if not files:
            if name not in LICENCE_EXCEPTIONS:
                missing.append(f"{name} {version} ({expression})")
                continue
            parts.append(f"--- no licence file in the crate: {LICENCE_EXCEPTIONS[name]}")
            continue
        for path in files:
            parts.append(f"--- {path.name}")
            # Some crates ship texts in another encoding; keep what cannot be decoded visible.
            parts.append(path.read_bytes().decode("utf-8", errors="replace").rstrip("\n"))
    web_parts, web_count = web_client_packages(repo)
    parts += ["", RULE, RULE, "The web client served by roost is built from these npm packages:"]
    parts += web_parts
    if missing:
        fail(
            "no licence file (LICENSE*, COPYING*, NOTICE*...) in these crates linked into roost; "
            "check each by hand and name it in LICENCE_EXCEPTIONS (scripts/crate-licences.py) "
            "with the reason: " + "; ".join(missing)
        )
    output.write_text("\n".join(parts) + "\n", encoding="utf-8")
    print(f"crate-licences: the licences of {len(crates)} crates for {target} and {web_count} npm "
          f"packages of the web client in {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
