#!/usr/bin/env bash
# Runs the shell examples of the docs and compares what they print with what the docs show.
#
#   scripts/doctest.sh [PAGE.md …]        (default: README.md and every docs/**/*.md)
#
# Which blocks run: fenced blocks whose info string has the word `doctest` after the language:
#
#   ```console doctest       a transcript: every line starting with "$ " is a command (a line
#                            ending in "\" continues it, a here-document runs to its end
#                            word); the lines up to the next "$ " are its whole output
#                            (stdout and stderr as a terminal shows them). A command followed
#                            by no lines must print nothing.
#   ```sh doctest            a script; its output is compared only when the next fenced block
#                            (blank lines between are fine) is an ```output block.
#   … doctest cleanup        (either kind) runs even when an earlier block failed, so the
#                            namespaces and hosts a page makes are always removed.
#   <!-- doctest: NAME -->   on the line before a fence (blank lines between are fine) marks
#                            that block the same way, for pages that keep their info strings
#                            plain (`<!-- doctest: NAME cleanup -->` for a cleanup block).
#
# How a page runs: in order, in one fresh `bash` with `set -e`, as root, from the repository
# root, with out/bin (or $DOCTEST_BIN) first on PATH and NETLAB_RUN_DIR set to a new empty
# directory. A command that exits non-zero ends the page (write `cmd; echo $?` or
# `cmd || true` where the docs show a failure). Whatever simulated hosts the page left in its
# run directory are removed afterwards.
#
# How output is compared: line by line, after both sides have runs of blanks squeezed to one
# space, trailing blanks and leading/trailing empty lines dropped, and these values replaced
# by placeholders (so a doc may show a real value or the placeholder):
#
#   the page's run directory       <run dir>     the repository's root       <repo>
#   64 hex digits (container IDs)  <id>          12 hex digits (short IDs)   <short id>
#   MAC addresses                  <mac>         fe80:: addresses            fe80::<ll>
#   veth names vethXXXXXXXX        veth<hash>    "@ifN" (peer ifindex)       @if<ifindex>
#   198.18.0.N (underlay)          198.18.0.<host>   "time=1.23 ms", "1.234 ms"  <t> ms
#   net:[4026532393]               net:[<inode>]
#
# In the docs' expected output only, `<n>` and `<pid>` match a number, `<any>` any text in
# a line, and a line that is only `...` or `…` any number of lines.
#
# Prints one line per page (pass / FAIL, with the first difference) and exits non-zero if any
# page failed. The release binaries are installed into out/bin first (scripts/install.sh; an
# up-to-date build takes seconds) unless DOCTEST_BIN names a directory holding them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "doctest.sh: run as root (the examples create namespaces)" >&2; exit 1; fi
if [ -z "${DOCTEST_BIN:-}" ]; then
  scripts/install.sh out/bin >/dev/null
  DOCTEST_BIN=$PWD/out/bin
fi
if [ "$#" -eq 0 ]; then
  set -- README.md $(find docs -name '*.md' | sort)
fi
# The pages get this shell's environment, not the one a python3 wrapper (pyenv) may set up.
export DOCTEST_ENV_PATH=$PATH
exec python3 - "$DOCTEST_BIN" "$@" <<'PY'
import os, re, shutil, subprocess, sys, tempfile

BIN, PAGES = sys.argv[1], sys.argv[2:]
PAGE_TIMEOUT = 900  # seconds for one page, its cleanup included
FENCE = re.compile(r'^(\s*)(```+)\s*(.*)$')
MARKER = re.compile(r'^\s*<!--\s*doctest\b:?(.*?)-->\s*$')

def blocks(path):
    """The fenced blocks of a page: (info words, text, line number)."""
    out, lines, i, marker = [], open(path).read().split('\n'), 0, None
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if MARKER.match(lines[i]):
                marker = MARKER.match(lines[i]).group(1).split()
            elif lines[i].strip():
                marker = None
            i += 1; continue
        indent, fence, info = m.group(1), m.group(2), m.group(3).split()
        if marker is not None:
            info = (info or ['sh'])[:1] + ['doctest'] + (['cleanup'] if 'cleanup' in marker else [])
            marker = None
        body, j = [], i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence) and lines[j].strip().strip('`') == ''):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        out.append((info, '\n'.join(body), i + 1))
        i = j + 1
    return out

HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?")

def transcript(text):
    """A console block as [(command, expected output lines)]."""
    steps, lines, i = [], text.split('\n'), 0
    while i < len(lines):
        if not lines[i].startswith('$ '):
            i += 1; continue
        cmd = [lines[i][2:]]
        i += 1
        while cmd[-1].endswith('\\') and i < len(lines):
            cmd.append(lines[i]); i += 1
        for word in HEREDOC.findall('\n'.join(cmd)):
            while i < len(lines):
                cmd.append(lines[i]); i += 1
                if cmd[-1].strip() == word: break
        expected = []
        while i < len(lines) and not lines[i].startswith('$ '):
            expected.append(lines[i]); i += 1
        steps.append(('\n'.join(cmd), expected))
    return steps

def steps(path):
    """Every step of a page: dicts with cmd, expected (None: not compared), cleanup, line."""
    bs, out = blocks(path), []
    for k, (info, text, line) in enumerate(bs):
        if len(info) < 2 or 'doctest' not in info[1:]:
            continue
        cleanup = 'cleanup' in info[1:]
        if info[0] == 'console':
            for cmd, expected in transcript(text):
                out.append(dict(cmd=cmd, expected=expected, cleanup=cleanup, line=line, console=True))
        else:
            expected = None
            if k + 1 < len(bs) and bs[k + 1][0][:1] == ['output']:
                expected = bs[k + 1][1].split('\n')
            out.append(dict(cmd=text, expected=expected, cleanup=cleanup, line=line, console=False))
    return out

def masked(text, run_dir):
    text = text.replace(run_dir, '<run dir>').replace(os.getcwd(), '<repo>')
    for pattern, repl in [
        (r'\b[0-9a-f]{64}\b', '<id>'), (r'\b[0-9a-f]{12}\b', '<short id>'),
        (r'\b(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}\b', '<mac>'), (r'\bfe80::[0-9a-f:]+', 'fe80::<ll>'),
        (r'\bveth[0-9a-f]{8}\b', 'veth<hash>'), (r'@if[0-9]+', '@if<ifindex>'), (r'\b198\.18\.0\.[0-9]+', '198.18.0.<host>'),
        (r'time=[0-9.]+ ms', 'time=<t> ms'), (r'\b[0-9]+\.[0-9]+ ms\b', '<t> ms'), (r'net:\[[0-9]+\]', 'net:[<inode>]'),
    ]:
        text = re.sub(pattern, repl, text)
    lines = [re.sub(r'[ \t]+', ' ', l).rstrip() for l in text.split('\n')]
    while lines and not lines[0]: lines.pop(0)
    while lines and not lines[-1]: lines.pop()
    return lines

def line_pattern(expected):
    parts = re.split(r'(<n>|<pid>|<any>)', expected)
    return re.compile(''.join({'<n>': '[0-9]+', '<pid>': '[0-9]+', '<any>': '.*'}.get(p, re.escape(p)) for p in parts) + '$')

def matches(expected, actual):
    """Whether the masked actual lines match the masked expected lines; else the first
    difference as text."""
    memo = {}
    def go(i, j):
        if (i, j) in memo: return memo[(i, j)]
        if i == len(expected):
            ok = j == len(actual)
        elif expected[i].strip() in ('...', '…'):
            ok = go(i + 1, j) or (j < len(actual) and go(i, j + 1))
        else:
            ok = j < len(actual) and bool(line_pattern(expected[i]).match(actual[j])) and go(i + 1, j + 1)
        memo[(i, j)] = ok
        return ok
    if go(0, 0): return None
    for n, e in enumerate(expected):
        if e.strip() in ('...', '…'): break
        a = actual[n] if n < len(actual) else '<end of output>'
        if not line_pattern(e).match(a): return f'expected {e!r}, got {a!r}'
    return 'output differs:\n' + '\n'.join('    | ' + l for l in actual[:40])

def script(page_steps, work):
    """The page as one bash script: each step's output in work/out.N; a failed step ends the
    page (set -e) and the EXIT trap runs the cleanup steps not yet run."""
    s = ['set -e', 'set -o pipefail', f'__dt={work}', '__dt_step=-1']
    cleanups = [n for n, st in enumerate(page_steps) if st['cleanup']]
    for n in cleanups:
        s += [f'__dt_cleanup_{n}() {{', page_steps[n]['cmd'], '}']
    s += ['__dt_exit() {', '  local st=$?', '  echo "$__dt_step $st" > "$__dt/end"', '  set +e']
    for n in cleanups:
        s += [f'  if [ -z "${{__dt_done_{n}:-}}" ]; then __dt_cleanup_{n} > "$__dt/out.{n}" 2>&1 < /dev/null; fi']
    s += ['}', 'trap __dt_exit EXIT']
    for n, st in enumerate(page_steps):
        s.append(f'__dt_step={n}')
        body = f'__dt_cleanup_{n}' if st['cleanup'] else st['cmd']
        if st['console']:
            # A console line exits with its last command's status, as in a terminal.
            s += ['set +e', '{', body, f'}} > "$__dt/out.{n}" 2>&1 < /dev/null', '__dt_st=$?', 'set -e',
                  f'echo "$__dt_st" > "$__dt/status.{n}"', '(exit $__dt_st)']
        else:
            s += ['{', body, f'}} > "$__dt/out.{n}" 2>&1 < /dev/null']
        if st['cleanup']: s.append(f'__dt_done_{n}=1')
    s += ['__dt_step=done']
    return '\n'.join(s) + '\n'

def remove_hosts(run_dir, env):
    hosts = os.path.join(run_dir, 'hosts')
    names = sorted(os.listdir(hosts)) if os.path.isdir(hosts) else []
    if names:
        subprocess.run([os.path.join(BIN, 'netlab'), 'host', 'rm', '-f', '--run-dir', run_dir] + names,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return names

def run_page(path):
    page_steps = steps(path)
    if not page_steps:
        return None
    work = tempfile.mkdtemp(prefix='doctest.')
    run_dir = os.path.join(work, 'run')
    os.mkdir(run_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith('PYENV')}
    env.update(PATH=BIN + ':' + os.environ['DOCTEST_ENV_PATH'], NETLAB_RUN_DIR=run_dir)
    with open(os.path.join(work, 'page.sh'), 'w') as f:
        f.write(script(page_steps, work))
    problem = None
    try:
        subprocess.run(['bash', os.path.join(work, 'page.sh')], env=env, cwd=os.getcwd(), timeout=PAGE_TIMEOUT,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired:
        problem = f'timed out after {PAGE_TIMEOUT} s'
    end = open(os.path.join(work, 'end')).read().split() if os.path.exists(os.path.join(work, 'end')) else ['?', '?']
    for n, st in enumerate(page_steps):
        if problem: break
        out_path = os.path.join(work, f'out.{n}')
        ran = os.path.exists(out_path)
        output = open(out_path, errors='replace').read() if ran else ''
        where = f'line {st["line"]}: {st["cmd"].splitlines()[0][:70]}'
        if end[0] == str(n) and end[1] != '0':
            tail = '\n'.join('    | ' + l for l in output.rstrip().split('\n')[-8:])
            problem = f'{where}: exit status {end[1]}\n{tail}'
        elif not ran:
            problem = f'{where}: never ran'
        elif st['expected'] is not None:
            diff = matches(masked('\n'.join(st['expected']), run_dir), masked(output, run_dir))
            if diff: problem = f'{where}: {diff}'
    left = remove_hosts(run_dir, env)
    if not problem and left:
        problem = f'left simulated hosts behind: {", ".join(left)}'
    if not problem and end[0] != 'done':
        problem = f'stopped at step {end[0]} (status {end[1]})'
    if problem:
        problem += f'\n    (the page ran as {work}/page.sh; outputs beside it)'
    else:
        shutil.rmtree(work, ignore_errors=True)
    return problem or ''  # '' : passed

failed = 0
for page in PAGES:
    problem = run_page(page)
    if problem is None:  # no block to run on this page
        continue
    print(f'{"pass" if not problem else "FAIL"}  {page}' + (f'\n    {problem}' if problem else ''), flush=True)
    failed += bool(problem)
print(f'doctest: {failed} page(s) failed' if failed else 'doctest: every page passed')
sys.exit(1 if failed else 0)
PY
