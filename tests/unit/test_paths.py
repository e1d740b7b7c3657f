"""Path rules: every expected message below was produced by ZooKeeper 3.8.0's
PathUtils.validatePath (org.apache.zookeeper.common.PathUtils) on the same input."""

import pytest

from pyzk.paths import (
    BadPath,
    basename,
    join_child,
    parent_of,
    validate_path,
    validate_path_with_seq,
)

JAVA_VALIDATE_PATH = [
    ("", "Path length must be > 0"),
    ("a", "Path must start with / character"),
    ("/", "OK"),
    ("/a", "OK"),
    ("/a/", "Path must not end with / character"),
    ("//", "Path must not end with / character"),
    ("/a//b", 'Invalid path string "/a//b" caused by empty node name specified @3'),
    ("/.", 'Invalid path string "/." caused by relative paths not allowed @1'),
    ("/..", 'Invalid path string "/.." caused by relative paths not allowed @2'),
    ("/a/.", 'Invalid path string "/a/." caused by relative paths not allowed @3'),
    ("/a/..", 'Invalid path string "/a/.." caused by relative paths not allowed @4'),
    ("/a/./b", 'Invalid path string "/a/./b" caused by relative paths not allowed @3'),
    ("/a/../b", 'Invalid path string "/a/../b" caused by relative paths not allowed @4'),
    ("/./a", 'Invalid path string "/./a" caused by relative paths not allowed @1'),
    ("/...", "OK"),
    ("/.a", "OK"),
    ("/a.", "OK"),
    ("/a..b", "OK"),
    ("/..a", "OK"),
    ("/a\x00b", 'Invalid path string "/a\x00b" caused by null character not allowed @2'),
    ("/a\x01", 'Invalid path string "/a\x01" caused by invalid character @2'),
    ("/a\x7f", 'Invalid path string "/a\x7f" caused by invalid character @2'),
    ("/a\x9f", 'Invalid path string "/a\x9f" caused by invalid character @2'),
    ("/a\xa0", "OK"),
    ("/a\ud7ff", "OK"),
    ("/a\ue000", 'Invalid path string "/a\ue000" caused by invalid character @2'),
    ("/a\uf8ff", 'Invalid path string "/a\uf8ff" caused by invalid character @2'),
    ("/a\uf900", "OK"),
    ("/a\ufff0", 'Invalid path string "/a\ufff0" caused by invalid character @2'),
    ("/a\uffef", "OK"),
    # A supplementary character is two Java chars; the high surrogate is forbidden.
    ("/a\U0001f600b", 'Invalid path string "/a\U0001f600b" caused by invalid character @2'),
    ("/x\U0001f600/\x01", 'Invalid path string "/x\U0001f600/\x01" caused by invalid character @2'),
    ("/\xe9t\xe9", "OK"),
    ("/zookeeper/quota", "OK"),
    ("/a b", "OK"),
    ("/a/b/c", "OK"),
]

JAVA_VALIDATE_SEQUENTIAL = [
    ("/a/", "OK"),
    ("/", "OK"),
    ("/a", "OK"),
    ("//", 'Invalid path string "//1" caused by empty node name specified @1'),
    ("/a//", 'Invalid path string "/a//1" caused by empty node name specified @3'),
    ("/.", "OK"),
    ("/a/.", "OK"),
]


def _outcome(check: object, *args: object) -> str:
    try:
        check(*args)  # type: ignore[operator]
    except BadPath as exc:
        return str(exc)
    return "OK"


@pytest.mark.parametrize(("path", "expected"), JAVA_VALIDATE_PATH)
def test_validate_path_matches_path_utils(path: str, expected: str) -> None:
    assert _outcome(validate_path, path) == expected


@pytest.mark.parametrize(("path", "expected"), JAVA_VALIDATE_SEQUENTIAL)
def test_sequential_create_validates_path_plus_1(path: str, expected: str) -> None:
    assert _outcome(validate_path_with_seq, path, True) == expected


def test_non_sequential_create_rejects_trailing_slash() -> None:
    assert _outcome(validate_path_with_seq, "/a/", False) == "Path must not end with / character"


def test_null_path() -> None:
    assert _outcome(validate_path, None) == "Path cannot be null"


def test_bad_path_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_path("relative")


@pytest.mark.parametrize(
    ("path", "parent", "name"),
    [
        ("/a", "/", "a"),
        ("/a/b", "/a", "b"),
        ("/a/b/c", "/a/b", "c"),
        ("/", "", ""),
        ("/a/", "/a", ""),
    ],
)
def test_parent_and_basename(path: str, parent: str, name: str) -> None:
    assert parent_of(path) == parent
    assert basename(path) == name


def test_join_child() -> None:
    assert join_child("/", "a") == "/a"
    assert join_child("/a", "b") == "/a/b"
    assert join_child(parent_of("/a/b"), basename("/a/b")) == "/a/b"
