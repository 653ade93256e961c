#!/usr/bin/env bash
# Prints the shell code of the README's block NAME: every fenced ```sh block
# between <!-- NAME:start --> and <!-- NAME:end -->. Used by CI to run the
# README's commands exactly as written (walkthrough, bench).
#
#   scripts/readme-block.sh NAME [README]
set -euo pipefail
name=${1:?usage: readme-block.sh NAME [README]}
readme=${2:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/README.md"}
awk -v start="<!-- $name:start -->" -v end="<!-- $name:end -->" '
    $0 == start { on = 1; next } $0 == end { on = 0 }
    on && /^```sh$/ { code = 1; next } on && /^```$/ { code = 0; next } on && code { print }' "$readme"
