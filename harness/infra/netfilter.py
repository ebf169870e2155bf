"""Real network faults between loopback addresses, with Debian's iptables (nf_tables backend; root).

Every rule is a tcp DROP in the filter table's OUTPUT chain carrying `-m comment --comment <tag>`;
only rules whose comment is exactly the tag are read or deleted, never anyone else's. State lives in
the kernel: `rules()` and `heal()` read `iptables -S`, so a new object with a crashed run's tag
cleans up after it. IPv4 only. Commands run with `-w` (wait for the xtables lock) and a 10 s
timeout; a failing one raises InfraError with the command and iptables' stderr.

Why OUTPUT: every loopback packet is locally generated and crosses OUTPUT exactly once (then lo,
then INPUT), in both directions, so one rule there suffices. Verified here (kernel 6.18, iptables
1.8.9 nft): a connect() from the dropped source times out; on an established connection send()
still succeeds, SO_ERROR stays 0 and nothing arrives; once the rule is gone TCP retransmits and the
data arrives. INPUT behaves the same for tcp (UDP senders would get EPERM from OUTPUT; tcp only here).
"""
from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass

from harness.errors import InfraError

CHAIN = "OUTPUT"
_TAG = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
_MISSING = "does a matching rule exist"   # iptables' stderr when -D finds no such rule (exit 1)


@dataclass(frozen=True)
class Rule:
    """One rule as added: `iptables -w -A <chain> <*spec>`; deleted with `-D` and the same argv."""

    chain: str
    spec: tuple[str, ...]


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [shutil.which("iptables") or "/usr/sbin/iptables", "-w", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InfraError(f"{shlex.join(cmd)} failed: {exc}") from exc


def _check(*args: str) -> str:
    """Run iptables; its stdout, or InfraError naming the command and iptables' stderr."""
    res = _iptables(*args)
    if res.returncode != 0:
        raise InfraError(f"iptables -w {shlex.join(args)} failed (exit {res.returncode}): {res.stderr.strip()}")
    return res.stdout


def _comment(line: str) -> str | None:
    """The `--comment` value of one `iptables -S` line, unquoted; None if it has none."""
    words = shlex.split(line)
    return words[words.index("--comment") + 1] if "--comment" in words[:-1] else None


def _rule_lines() -> list[str]:
    return [ln for ln in _check("-S").splitlines() if ln.startswith("-A ")]


def leftovers(prefix: str = "chaoscafe-") -> list[str]:
    """`iptables -S` lines of every rule whose comment starts with `prefix` (any tag, any object)."""
    return [ln for ln in _rule_lines() if (c := _comment(ln)) is not None and c.startswith(prefix)]


def available() -> str | None:
    """None when iptables can be used here (root, binary present, `iptables -w -S` works), else why not."""
    if os.geteuid() != 0:
        return "iptables needs root"
    if shutil.which("iptables") is None and not os.access("/usr/sbin/iptables", os.X_OK):
        return "iptables not found (apt-get install iptables)"
    try:
        _check("-S")
    except InfraError as exc:
        return str(exc)
    return None


def _address(name: str, value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"{name}={value!r}: not an IPv4 address or network") from exc
    if net.version != 4:
        raise ValueError(f"{name}={value!r}: iptables filters IPv4 only")
    return value


def _port(name: str, value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"{name}={value!r}: a tcp port is an int in 1..65535")
    return str(value)


class Netfilter:
    """The iptables rules of one tag (e.g. "chaoscafe-<run id>")."""

    def __init__(self, tag: str) -> None:
        """ValueError unless `tag` is 1-200 characters of [A-Za-z0-9_.:-]."""
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise ValueError(f"tag {tag!r}: use 1-200 characters of [A-Za-z0-9_.:-]")
        self.tag = tag

    def drop(self, *, src: str | None = None, dst: str | None = None, dport: int | None = None,
             sport: int | None = None, probability: float | None = None) -> Rule:
        """Add one rule dropping tcp packets that match all the given fields (addresses are IPv4
        addresses or networks; ports 1..65535; `probability` in (0, 1] drops that fraction at
        random, each packet independently). At least one field is required: an empty match would
        drop all tcp. Returns the Rule for `remove`. ValueError for bad arguments, InfraError if
        iptables refuses."""
        spec: list[str] = []
        if src is not None:
            spec += ["-s", _address("src", src)]
        if dst is not None:
            spec += ["-d", _address("dst", dst)]
        if not spec and dport is None and sport is None:
            raise ValueError("drop() needs at least one of src, dst, dport, sport")
        spec += ["-p", "tcp"]
        if sport is not None:
            spec += ["--sport", _port("sport", sport)]
        if dport is not None:
            spec += ["--dport", _port("dport", dport)]
        if probability is not None:
            if isinstance(probability, bool) or not 0 < probability <= 1:   # also rejects NaN
                raise ValueError(f"probability={probability!r}: must be in (0, 1]")
            spec += ["-m", "statistic", "--mode", "random", "--probability", repr(float(probability))]
        spec += ["-m", "comment", "--comment", self.tag, "-j", "DROP"]
        rule = Rule(CHAIN, tuple(spec))
        _check("-A", rule.chain, *rule.spec)
        return rule

    def remove(self, rule: Rule) -> None:
        """Delete one instance of `rule`; a rule already gone is not an error."""
        self._delete(rule)

    def _delete(self, rule: Rule) -> bool:
        """True if `rule` was deleted now, False if it was already gone."""
        res = _iptables("-D", rule.chain, *rule.spec)
        if res.returncode == 1 and _MISSING in res.stderr:
            return False
        if res.returncode != 0:
            raise InfraError(f"iptables -w -D {shlex.join((rule.chain, *rule.spec))} failed "
                             f"(exit {res.returncode}): {res.stderr.strip()}")
        return True

    def rules(self) -> list[str]:
        """`iptables -S` lines of this tag's rules now in the kernel (exact comment match)."""
        return [ln for ln in _rule_lines() if _comment(ln) == self.tag]

    def heal(self) -> int:
        """Delete every rule carrying this tag, whoever added it; returns how many were deleted."""
        removed = 0
        for line in self.rules():
            words = shlex.split(line)          # "-A CHAIN match..." -> "-D CHAIN match..."
            removed += self._delete(Rule(words[1], tuple(words[2:])))
        return removed
