#!/usr/bin/env python3
"""Writes the seed corpus for git_clone_fuzz (layout at the top of
git_clone_fuzz.cc: one selector byte, then the content of that git file of the
sandbox clone) into corpus/git_clone/ next to this script."""

import pathlib

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "git_clone"
CONFIG, HEAD, PACKED_REFS, MAIN_REF, EXCLUDE, INDEX, GITIGNORE, SUB_GITIGNORE = range(8)
SHA = b"0123456789abcdef0123456789abcdef01234567"
BASE_CONFIG = b"[core]\n\trepositoryformatversion = 0\n\tbare = false\n"

SEEDS = {
    "config_plain": (CONFIG, BASE_CONFIG + b'[user]\n\tname = A\n\temail = a@x\n[ksbox]\n\tbranch = main\n'),
    "config_include": (CONFIG, BASE_CONFIG + b"[include]\n\tpath = /etc/gitconfig\n"),
    "config_includeif_bom": (CONFIG, b"\xef\xbb\xbf  [IncludeIf \"gitdir:/\"]\n\tpath = /dev/zero\n"),
    "config_worktree": (CONFIG, BASE_CONFIG + b"\tworktree = /\n"),
    "config_word_include_in_value": (CONFIG, BASE_CONFIG + b'[branch "include"]\n\tremote = origin\n'),
    "config_garbage": (CONFIG, b"[\x00\xff\n=\n[core\n"),
    "config_future_format": (CONFIG, b"[core]\n\trepositoryformatversion = 99\n"),
    "head_symref": (HEAD, b"ref: refs/heads/main\n"),
    "head_dotdot": (HEAD, b"ref: refs/heads/../../../etc/passwd\n"),
    "head_outside_refs": (HEAD, b"ref: HEAD\n"),
    "head_detached": (HEAD, SHA + b"\n"),
    "head_empty": (HEAD, b""),
    "packed_refs": (PACKED_REFS, b"# pack-refs with: peeled fully-peeled sorted \n" + SHA + b" refs/heads/main\n"),
    "packed_refs_garbage": (PACKED_REFS, b"^" + SHA + b"\nxx refs/\n"),
    "main_ref_symref_loop": (MAIN_REF, b"ref: refs/heads/main\n"),
    "main_ref_bad_sha": (MAIN_REF, b"zzzz\n"),
    "exclude": (EXCLUDE, b"*.txt\n!untracked.txt\n[\n**/**/**/**\n"),
    "index_garbage": (INDEX, b"DIRC\x00\x00\x00\x02\x00\x00\x00\x01" + b"\x00" * 40),
    "index_empty": (INDEX, b""),
    "gitignore": (GITIGNORE, b"*.log\nbuild/\n!keep.log\n"),
    "gitignore_vtab": (GITIGNORE, b"\v"),  # libgit2 1.5 loops on it: refused first
    "sub_gitignore": (SUB_GITIGNORE, b"/only-here\n\\ escaped\n"),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (which, content) in SEEDS.items():
        (OUT / name).write_bytes(bytes([which]) + content)


if __name__ == "__main__":
    main()
