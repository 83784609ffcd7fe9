#!/usr/bin/env python3
"""Checks that the README's code snippets of one language are the tested code, verbatim.

Usage: check-readme-snippets.py LANGUAGE README SECTION FILE...

Every fenced block tagged LANGUAGE in the README section titled SECTION (a `## ` heading) must
equal a region of one of the FILEs marked by lines containing `readme-snippet:begin` and
`readme-snippet:end` (compared after removing the common indentation), and every marked region
must appear in the README. Editing either side without the other fails, naming both places.
"""
import difflib
import re
import sys
import textwrap


def readme_snippets(readme, section, language):
    text = open(readme, encoding="utf-8").read()
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not match:
        sys.exit(f"{readme}: no '## {section}' section")
    start_line = text[: match.start(1)].count("\n") + 1
    snippets = []
    for block in re.finditer(rf"^```{re.escape(language)}\n(.*?)^```$", match.group(1), re.S | re.M):
        line = start_line + match.group(1)[: block.start()].count("\n")
        snippets.append((f"{readme}:{line}", textwrap.dedent(block.group(1))))
    return snippets


def marked_regions(path):
    regions, current, begin = [], None, 0
    for number, line in enumerate(open(path, encoding="utf-8"), 1):
        if "readme-snippet:begin" in line:
            if current is not None:
                sys.exit(f"{path}:{number}: readme-snippet:begin inside another region")
            current, begin = [], number
        elif "readme-snippet:end" in line:
            if current is None:
                sys.exit(f"{path}:{number}: readme-snippet:end without a begin")
            regions.append((f"{path}:{begin + 1}", textwrap.dedent("".join(current))))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:
        sys.exit(f"{path}:{begin}: readme-snippet:begin without an end")
    return regions


def closest(text, candidates):
    return max(candidates, key=lambda c: difflib.SequenceMatcher(None, text, c[1]).ratio())


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    language, readme, section, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    snippets = readme_snippets(readme, section, language)
    regions = [region for path in files for region in marked_regions(path)]
    if not snippets:
        sys.exit(f"{readme}: no ```{language} snippet in '## {section}'")
    failures = 0
    for where, text in snippets:
        if any(text == region for _, region in regions):
            continue
        failures += 1
        print(f"{where}: this ```{language} snippet is not a marked region of {', '.join(files)}")
        if regions:
            other, region = closest(text, regions)
            print("".join(difflib.unified_diff(region.splitlines(True), text.splitlines(True),
                                               other, where)))
    for where, region in regions:
        if not any(region == text for _, text in snippets):
            failures += 1
            print(f"{where}: this marked region is not a ```{language} snippet of the README's "
                  f"'## {section}' (update the README or move the markers)")
    if failures:
        sys.exit(1)
    print(f"{len(snippets)} {language} snippet(s) of '## {section}' equal the tested code")


if __name__ == "__main__":
    main()
