"""lgc-v2 red team: hedges and answers the scorers misread, and an independent brute-force cross-check.

Each defect test failed before its fix. The cross-check at the end re-derives every task's answer from its
prompt alone (a checker written from the task's statement, not from the scorer) and compares the scorer's
verdict with it on gold answers, perturbed golds and random replies.
"""

from __future__ import annotations

import ast
import itertools
import random
import re
import time
from fractions import Fraction

import pytest

from tests.envs.lgc_v2.helpers import task_of
from veritas_rl.envs import make
from veritas_rl.envs.answers import CONFLICTING_BOXED
from veritas_rl.envs.lgc_v2 import make_task_id
from veritas_rl.envs.lgc_v2.common import HIDDEN_BOX, MAX_BOXED_ANSWERS, UNCLOSED_BOX

BOXED_TYPES = ["game_of_24", "operation", "cryptarithm", "dyck_language2", "boolean_expressions",
               "dyck_language_reasoning_errors"]


def outcome(env, task, answer) -> tuple[float, str]:
    score = env.score(task, answer)
    return score.value, score.kind


def _boxed_gold(env, task) -> str:
    oracle = env.oracle(task)
    return oracle[oracle.index("\\boxed{") :]


# -- several boxes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task_type", BOXED_TYPES)
def test_the_prompts_empty_box_is_no_answer_and_no_hedge(env, task_type):
    # was 0.0 "several different \boxed{} answers": an empty box counted as a second answer
    task = task_of(env, task_type, 1)
    boxed = _boxed_gold(env, task)
    for answer in (f"As asked, the result goes in \\boxed{{}}: {boxed}", f"{boxed} (in \\boxed{{ }}, as asked)"):
        assert outcome(env, task, answer) == (1.0, "correct"), answer
    assert outcome(env, task, "I would put it in \\boxed{}.") == (0.0, "no_answer")


def test_a_brace_less_box_is_a_slot_too(env):
    # was 1.0: "\boxed{True} \boxed False" read only the braced box (braced boxes won over the last one)
    task = task_of(env, "boolean_expressions", 0)
    gold = task.ground_truth
    other = "False" if gold == "True" else "True"
    for answer in (f"\\boxed{{{gold}}} \\boxed {other}", f"\\boxed {other} \\boxed{{{gold}}}",
                   f"\\boxed {gold}\n\\boxed {other}"):
        assert outcome(env, task, answer) == (0.0, "hedge"), answer
        assert env.score(task, answer).info["reason"] == CONFLICTING_BOXED
    assert outcome(env, task, f"\\boxed{{{gold}}} so \\boxed {gold}.") == (1.0, "correct")
    assert outcome(env, task, f"so \\boxed {gold}") == (1.0, "correct")
    assert outcome(env, task, f"so \\boxed {{{gold}}}") == (1.0, "correct")  # \boxed {True}: a braced box


@pytest.mark.parametrize("task_type", BOXED_TYPES)
def test_an_unclosed_box_cannot_hide_a_second_answer(env, task_type):
    # was 1.0: the scan of the boxes stopped at the unclosed one, so the decoy inside it went unseen
    task = task_of(env, task_type, 2)
    boxed = _boxed_gold(env, task)
    decoy = "\\boxed{True}" if "False" in boxed or "True" not in boxed else "\\boxed{False}"
    for answer in (f"\\boxed{{ let me see {decoy} hmm {boxed}", f"\\boxed{{ x \\boxed 7 {boxed}"):
        score = env.score(task, answer)
        assert (score.value, score.kind, score.info["reason"]) == (0.0, HIDDEN_BOX[1], HIDDEN_BOX[0]), answer
    # an unclosed box with nothing boxed after it but the answer still reads the answer (a filler)
    assert outcome(env, task, "\\boxed{ ``` Answer: ( [ " * 500 + "\n" + boxed) == (1.0, "correct")
    # the last box unclosed: a cut-off answer
    score = env.score(task, f"{boxed} and so \\boxed{{")
    assert (score.value, score.info["reason"]) == (0.0, UNCLOSED_BOX[0])


def test_more_boxes_than_are_read_is_a_hedge(env):
    task = task_of(env, "operation", 0)
    gold = task.ground_truth
    answer = f"\\boxed{{{gold}}}" * (MAX_BOXED_ANSWERS + 1) + f"\\boxed{{{int(gold) + 1}}}"
    assert outcome(env, task, answer) == (0.0, "hedge")


@pytest.mark.parametrize("text", ["\\boxed{" * 28_000, "\\boxed{{}" * 22_000, "\\boxed{ " + "\\boxed 1 " * 20_000,
                                  "\\boxed{ " + "\\fbox 1 " * 20_000, "\\boxed{1}" * 22_000,
                                  "\\boxed " * 28_000, "\\boxed{" + "{" * 100_000 + "}" * 90_000])
def test_box_floods_score_zero_fast(env, text):
    for task_type in BOXED_TYPES:
        task = task_of(env, task_type, 0)
        start = time.perf_counter()
        score = env.score(task, text)
        assert time.perf_counter() - start < 0.2 and score.value == 0.0 and score.info["reason"]


# -- answers each type misread ----------------------------------------------------------------------


def test_an_operation_gold_longer_than_forty_digits_scores():
    # was 0.0 "boxed integer too long": six operators over operands up to 99 reach 60 digits
    env = make("lgc-v2", task_types=["operation"], operation_max_ops=6, operation_max_value=99)
    task = env.task(make_task_id("operation", 900))
    assert len(task.ground_truth) == 60
    assert outcome(env, task, env.oracle(task)) == (1.0, "correct")
    assert outcome(env, task, f"\\boxed{{{task.ground_truth}1}}") == (0.0, "wrong")
    assert outcome(env, task, "\\boxed{" + "9" * 62 + "}") == (0.0, "too_long")


def test_integers_with_thousands_separators(env):
    # was 0.0 "boxed answer is not an integer"
    task = next(t for t in (task_of(env, "operation", s) for s in range(200)) if int(t.ground_truth) >= 1000)
    gold = int(task.ground_truth)
    for spelled in (f"{gold:,}", f"{gold:,}".replace(",", "{,}"), f"{gold:,}".replace(",", "\\,")):
        assert outcome(env, task, f"\\boxed{{{spelled}}}") == (1.0, "correct"), spelled
    for not_one_number in (f"{gold // 100},{gold % 100:02d}", f"{gold // 1000}, {gold % 1000:03d}", f"{gold:,}0",
                           f",{gold}", f"{gold},"):
        assert outcome(env, task, f"\\boxed{{{not_one_number}}}")[0] == 0.0, not_one_number


def test_boolean_in_bold_or_with_a_full_stop(env):
    # was 0.0 "boxed answer is not True or False"
    task = task_of(env, "boolean_expressions", 0)
    gold = task.ground_truth
    for answer in (f"\\boxed{{\\textbf{{{gold}}}}}", f"\\boxed{{{gold}.}}", f"\\boxed{{\\mathbf{{{gold.lower()}}}}}"):
        assert outcome(env, task, answer) == (1.0, "correct"), answer
    for answer in ("\\boxed{T}", "\\boxed{1}", f"\\boxed{{{gold}..}}", "\\boxed{\\textbf{True or False}}"):
        assert outcome(env, task, answer)[0] == 0.0, answer


def test_sudoku_grid_with_crlf_lines_or_as_a_list_of_rows(env):
    # was 0.0 "fenced block is not a 9x9 grid of digits 1-9"
    task = task_of(env, "sudoku", 0)
    rows = [task.ground_truth[r * 9 : r * 9 + 9] for r in range(9)]
    crlf = "```\r\n" + "\r\n".join(" ".join(row) for row in rows) + "\r\n```"
    listed = "```python\n[\n" + "\n".join("  [" + ", ".join(row) + "]," for row in rows) + "\n]\n```"
    for answer in (crlf, listed):
        assert outcome(env, task, answer) == (1.0, "correct"), answer
    broken = listed.replace(rows[0][0], "x", 1)
    assert outcome(env, task, broken)[0] == 0.0


def test_cryptarithm_mapping_in_latex(env):
    # was 0.0 "mapping is not of the form A=1,B=2"
    task = task_of(env, "cryptarithm", 0)
    pairs = task.ground_truth.split(",")
    for body in (",\\ ".join(pairs), ",\\; ".join(pairs), "\\text{" + ", ".join(pairs) + "}",
                 " \\\\ ".join(pairs), "\n".join(pairs), "; \\quad ".join(pairs)):
        assert outcome(env, task, f"\\boxed{{{body}}}") == (1.0, "correct"), body
    # groups are read three deep, as around a truth value: deeper nesting is no answer
    assert outcome(env, task, "\\boxed{" + "{" * 90 + task.ground_truth + "}" * 90 + "}") == (0.0, "no_answer")
    swapped = ",".join(pairs[1:2] + pairs[:1] + pairs[2:]).replace(pairs[0][0], "#", 1)
    assert outcome(env, task, f"\\boxed{{{swapped}}}")[0] == 0.0


def test_reasoning_errors_set_in_brackets_is_no_answer(env):
    # was 1.0: the answer's brackets were stripped however deep, so 90 levels of "(" and "[3]" scored
    task = next(t for t in (task_of(env, "dyck_language_reasoning_errors", s) for s in range(40))
                if t.ground_truth != "none")
    gold = task.ground_truth
    for answer in (f"[{gold}]", "(" * 90 + gold + ")" * 90, f"({gold})", f"[[{gold}]]"):
        assert outcome(env, task, f"\\boxed{{{answer}}}") == (0.0, "no_answer"), answer
    assert outcome(env, task, f"\\boxed{{{gold.replace(',', ', ')}}}") == (1.0, "correct")
    empty = next(t for t in (task_of(env, "dyck_language_reasoning_errors", s) for s in range(40))
                 if t.ground_truth == "none")
    for none in ("\\varnothing", "∅", "\\emptyset", "None", "\\text{none}"):
        assert outcome(env, empty, f"\\boxed{{{none}}}") == (1.0, "correct"), none


def test_game_of_24_latex_spacing_never_joins_digits():
    env = make("lgc-v2", task_types=["game_of_24"])
    task = env.task(make_task_id("game_of_24", 0))
    task = type(task)(task.env, task.task_id, task.prompt, "(1+2+3)*4", {**task.extra, "numbers": [1, 2, 3, 4]})
    assert outcome(env, task, "\\boxed{(1 + 2 + 3) \\, \\times \\, 4}") == (1.0, "correct")  # was 0.0
    assert outcome(env, task, "\\boxed{\\left( 1+2+3 \\right) \\cdot 4}") == (1.0, "correct")
    twelve = type(task)(task.env, task.task_id, task.prompt, "12*2*1*1", {**task.extra, "numbers": [12, 2, 1, 1]})
    for joined in ("1\\,2*2*1*1", "1$2*2*1*1", "1\\left2*2*1*1", "1\\ 2*2*1*1"):
        assert outcome(env, twelve, f"\\boxed{{{joined}}}")[0] == 0.0, joined


def test_dyck_answer_line_may_box_the_closers(env):
    # was 0.0 "answer is not a sequence of closing brackets"
    task = next(t for t in (task_of(env, "dyck_language", s) for s in range(40)) if "}" in t.ground_truth)
    spaced = " ".join(task.ground_truth)
    assert outcome(env, task, f"Answer: $\\boxed{{{spaced}}}$") == (1.0, "correct")
    assert outcome(env, task, f"Answer: \\boxed{{{spaced} )}}")[0] == 0.0
    assert outcome(env, task, f"Answer: \\boxed{{{spaced}}} \\boxed{{)}}")[0] == 0.0


# -- independent brute-force cross-check ------------------------------------------------------------

_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def _prompt(task) -> str:
    return task.prompt[0]["content"]


def _closers_of(prompt: str) -> str:
    stack: list[str] = []
    for c in re.search(r"^Input: (.*)$", prompt, re.M).group(1).split():
        if c in _PAIRS:
            stack.append(c)
        else:
            assert stack and _PAIRS[stack.pop()] == c, "the prefix is not a valid Dyck prefix"
    assert stack, "nothing is left open"
    return "".join(_PAIRS[c] for c in reversed(stack))


def _first_error_of(prompt: str) -> int:
    seq = prompt.split("\n")[1].split()
    stack: list[int] = []
    for i, c in enumerate(seq, 1):
        if c in _PAIRS:
            stack.append(i)
        elif stack and _PAIRS[seq[stack[-1] - 1]] == c:
            stack.pop()
        else:
            return i
    return stack[0] if stack else 0


def _wrong_thoughts_of(prompt: str) -> set[int]:
    seq = re.search(r"^Input: (.*)$", prompt, re.M).group(1).split()
    stated = {int(n): line for n, line in re.findall(r"^Thought (\d+): (.*)$", prompt, re.M)}
    stack: list[str] = []
    wrong = set()
    for k, c in enumerate(seq):
        stack = stack + [c] if c in _PAIRS else stack[:-1]
        symbol, shown = stated[k + 2].split(" ; stack: ")
        assert symbol == c
        if (shown.split() if shown != "empty" else []) != stack:
            wrong.add(k + 2)
    return wrong


def _boolean_of(prompt: str) -> bool:
    expr = prompt.split("\n")[1]
    assert set(expr.replace("(", " ").replace(")", " ").split()) <= {"True", "False", "not", "and", "or"}
    return eval(expr)  # our own generated text, checked above to be only these words: Python's precedence


def _operation_of(prompt: str) -> int:
    defs = dict(re.findall(r"^  a (\S) b = (.*)$", prompt, re.M))
    tokens = re.findall(r"\d+|\S", re.search(r"^Compute: (.*)$", prompt, re.M).group(1))
    pos = 0

    def atom() -> int:
        nonlocal pos
        tok, pos = tokens[pos], pos + 1
        if tok != "(":
            return int(tok)
        value = binary()
        assert tokens[pos] == ")"
        pos += 1
        return value

    def binary() -> int:
        nonlocal pos
        a = atom()
        if pos < len(tokens) and tokens[pos] in defs:
            sym, pos = tokens[pos], pos + 1
            b = atom()
            assert not (pos < len(tokens) and tokens[pos] in defs), "a chain of operators is ambiguous"
            return eval(defs[sym], {"max": max, "min": min}, {"a": a, "b": b})  # the prompt's definition
        return a

    value = binary()
    assert pos == len(tokens)
    return value


def _numbers_of(prompt: str) -> list[int]:
    return [int(x) for x in re.search(r"Use the numbers ([\d, ]+) to make 24", prompt).group(1).split(",")]


def _makes(numbers: tuple[Fraction, ...]) -> set[Fraction]:
    if len(numbers) == 1:
        return set(numbers)
    out: set[Fraction] = set()
    for r in range(1, len(numbers)):
        for left in set(itertools.combinations(range(len(numbers)), r)):
            a = tuple(numbers[i] for i in left)
            b = tuple(numbers[i] for i in range(len(numbers)) if i not in left)
            for x in _makes(a):
                for y in _makes(b):
                    out |= {x + y, x - y, x * y} | ({x / y} if y else set())
    return out


def _expression_makes_24(expr: str, numbers: list[int]) -> bool:
    literals: list[int] = []

    def ev(node) -> Fraction:
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Div):
                if b == 0:
                    raise ZeroDivisionError
                return a / b
            return a + b if isinstance(node.op, ast.Add) else a - b if isinstance(node.op, ast.Sub) else a * b
        assert isinstance(node, ast.Constant) and type(node.value) is int
        literals.append(node.value)
        return Fraction(node.value)

    try:
        value = ev(ast.parse(expr, mode="eval").body)
    except ZeroDivisionError:
        return False
    return value == 24 and sorted(literals) == sorted(numbers)


def _puzzle_of(prompt: str) -> list[int]:
    rows = [line.split() for line in prompt.split("\n") if re.fullmatch(r"([1-9_] ){8}[1-9_]", line)]
    assert len(rows) == 9
    return [0 if c == "_" else int(c) for row in rows for c in row]


def _solves(grid: list[int], puzzle: list[int]) -> bool:
    units = [range(r * 9, r * 9 + 9) for r in range(9)] + [range(c, 81, 9) for c in range(9)]
    units += [[(b // 3 * 3 + i) * 9 + b % 3 * 3 + j for i in range(3) for j in range(3)] for b in range(9)]
    return (all(1 <= v <= 9 for v in grid) and all(p in (0, g) for p, g in zip(puzzle, grid))
            and all(len({grid[i] for i in unit}) == 9 for unit in units))


def _block(grid: list[int]) -> str:
    return "```\n" + "\n".join(" ".join(map(str, grid[r * 9 : r * 9 + 9])) for r in range(9)) + "\n```"


def _solutions(puzzle: list[int], limit: int) -> list[list[int]]:
    grid, found = list(puzzle), []

    def options(i: int) -> list[int]:
        r, c = divmod(i, 9)
        box = {grid[(r // 3 * 3 + a) * 9 + c // 3 * 3 + b] for a in range(3) for b in range(3)}
        return [d for d in range(1, 10) if d not in set(grid[r * 9 : r * 9 + 9]) | set(grid[c::9]) | box]

    def fill() -> None:
        empty = [i for i in range(81) if not grid[i]]
        if not empty:
            found.append(list(grid))
            return
        i = min(empty, key=lambda j: len(options(j)))
        for d in options(i):
            grid[i] = d
            fill()
            grid[i] = 0
            if len(found) >= limit:
                return

    fill()
    return found


def _crypt_of(prompt: str) -> tuple[list[str], str, bool]:
    left, right = prompt.split("\n")[2].split(" = ")
    return left.split(" + "), right, "Leading letters may be zero" in prompt


def _crypt_ok(mapping: dict[str, int], words: list[str], result: str, leading_zero: bool) -> bool:
    if set(mapping) != set("".join(words) + result) or len(set(mapping.values())) != len(mapping):
        return False
    if not leading_zero and any(mapping[w[0]] == 0 for w in [*words, result]):
        return False
    number = lambda w: int("".join(str(mapping[c]) for c in w))  # noqa: E731
    return sum(map(number, words)) == number(result)


def _crypt_solutions(words: list[str], result: str, leading_zero: bool, limit: int = 20) -> list[dict[str, int]]:
    """Every mapping (up to ``limit``), column by column from the right with the carry: a brute force that
    prunes each column as soon as its letters are assigned."""
    width = max(map(len, [*words, result]))
    columns = [([w[-1 - k] for w in words if k < len(w)], result[-1 - k] if k < len(result) else None)
               for k in range(width)]
    found: list[dict[str, int]] = []

    def column(k: int, carry: int, mapping: dict[str, int]) -> None:
        if len(found) >= limit:
            return
        if k == width:
            if carry == 0 and len(result) == width and _crypt_ok(mapping, words, result, leading_zero):
                found.append(dict(mapping))
            return
        letters, target = columns[k]
        todo = sorted({c for c in [*letters, target] if c and c not in mapping})
        for digits in itertools.permutations(sorted(set(range(10)) - set(mapping.values())), len(todo)):
            trial = {**mapping, **dict(zip(todo, digits))}
            total = sum(trial[c] for c in letters) + carry
            if target is not None and total % 10 == trial[target]:
                column(k + 1, total // 10, trial)

    column(0, 0, {})
    return found


_CROSS_CONFIGS = [
    {},
    {"cryptarithm_allow_leading_zero": True, "cryptarithm_max_words": 5, "game24_max_value": 30, "dyck_num_types": 1,
     "dyck_min_length": 2, "dyck_max_length": 60, "dyck_max_errors": 10, "boolean_max_depth": 8,
     "operation_max_ops": 6, "operation_max_value": 99, "sudoku_min_empty": 55, "sudoku_max_empty": 64},
]


@pytest.mark.parametrize("config", _CROSS_CONFIGS, ids=["default", "extreme"])
def test_scorers_agree_with_an_independent_brute_force(config):
    env = make("lgc-v2", **config)
    rng = random.Random(5)
    disagreements: list[tuple] = []

    def check(task, text: str, right: bool) -> None:
        if (env.score(task, text).value == 1.0) != right:
            disagreements.append((task.task_id, text[:100], right))

    for seed in range(25):
        for task_type in env.types:
            task = env.task(make_task_id(task_type, seed))
            prompt = _prompt(task)
            if task_type == "dyck_language":
                gold = _closers_of(prompt)
                assert gold == task.ground_truth
                for _ in range(5):
                    got = list(gold)
                    move = rng.randrange(3)
                    if move == 0:
                        del got[rng.randrange(len(got))]
                    elif move == 1:
                        got.insert(rng.randrange(len(got) + 1), rng.choice(")]}>"))
                    else:
                        rng.shuffle(got)
                    check(task, "Answer: " + " ".join(got), "".join(got) == gold)
                check(task, "Answer: " + gold, True)
            elif task_type == "dyck_language2":
                gold = _first_error_of(prompt)
                assert str(gold) == task.ground_truth
                for guess in {gold, gold + 1, max(gold - 1, 0), 0, rng.randrange(30)}:
                    check(task, f"\\boxed{{{guess}}}", guess == gold)
            elif task_type == "dyck_language_reasoning_errors":
                gold = _wrong_thoughts_of(prompt)
                assert gold == (set() if task.ground_truth == "none" else set(map(int, task.ground_truth.split(","))))
                count = len(re.findall(r"^Thought", prompt, re.M))
                for guess in [gold, gold ^ {rng.randint(1, count)}, set(rng.sample(range(1, count + 1), 2))]:
                    check(task, "\\boxed{" + (",".join(map(str, sorted(guess, reverse=True))) or "none") + "}",
                          guess == gold)
            elif task_type == "boolean_expressions":
                gold = _boolean_of(prompt)
                assert str(gold) == task.ground_truth
                for guess in ("True", "false", "FALSE", "1", "0", "T", "yes"):
                    check(task, f"\\boxed{{{guess}}}", guess.lower() == str(gold).lower())
            elif task_type == "operation":
                gold = _operation_of(prompt)
                assert str(gold) == task.ground_truth
                for guess in (str(gold), str(gold + 1), str(-gold - 1), f"{gold}.0", f"{gold}1", f"{gold}/1"):
                    check(task, f"\\boxed{{{guess}}}", guess == str(gold))
            elif task_type == "game_of_24":
                numbers = _numbers_of(prompt)
                assert Fraction(24) in _makes(tuple(map(Fraction, numbers))), "an unsolvable puzzle was served"
                assert _expression_makes_24(task.ground_truth, numbers)
                for _ in range(15):
                    used = list(numbers)
                    pick = rng.random()
                    if pick < 0.15:
                        used = used[:3]
                    elif pick < 0.3:
                        used.append(rng.randint(1, 13))
                    elif pick < 0.4:
                        used[rng.randrange(4)] = rng.randint(1, 13)
                    rng.shuffle(used)

                    def build(xs: list[int]) -> str:
                        if len(xs) == 1:
                            return str(xs[0])
                        k = rng.randint(1, len(xs) - 1)
                        return f"({build(xs[:k])}{rng.choice('+-*/')}{build(xs[k:])})"

                    expr = build(used)
                    check(task, f"\\boxed{{{expr}}}", _expression_makes_24(expr, numbers))
            elif task_type == "cryptarithm":
                words, result, leading_zero = _crypt_of(prompt)
                solutions = _crypt_solutions(words, result, leading_zero)
                gold = {pair[0]: int(pair[2]) for pair in task.ground_truth.split(",")}
                assert _crypt_ok(gold, words, result, leading_zero) and solutions  # (often more than one)
                for mapping in solutions:  # every solution, not only the generator's, scores
                    check(task, "\\boxed{" + ", ".join(f"{k}={v}" for k, v in mapping.items()) + "}", True)
                for _ in range(5):
                    mapping, letters = dict(gold), list(gold)
                    move = rng.randrange(3)
                    if move == 0:
                        a, b = rng.sample(letters, 2)
                        mapping[a], mapping[b] = mapping[b], mapping[a]
                    elif move == 1:
                        mapping[rng.choice(letters)] = rng.randrange(10)
                    else:
                        del mapping[rng.choice(letters)]
                    check(task, "\\boxed{" + ",".join(f"{k}={v}" for k, v in mapping.items()) + "}",
                          _crypt_ok(mapping, words, result, leading_zero))
            elif task_type == "sudoku":
                puzzle = _puzzle_of(prompt)
                gold = [int(c) for c in task.ground_truth]
                assert _solves(gold, puzzle)
                for solution in _solutions(puzzle, 3 if seed < 5 else 1):  # other solutions score too
                    check(task, _block(solution), True)
                for _ in range(4):
                    grid = list(gold)
                    move = rng.randrange(3)
                    if move == 0:
                        r, (a, b) = rng.randrange(9), rng.sample(range(9), 2)
                        grid[r * 9 + a], grid[r * 9 + b] = grid[r * 9 + b], grid[r * 9 + a]
                    elif move == 1:
                        grid[rng.randrange(81)] = rng.randint(1, 9)
                    else:  # a valid grid that does not keep the givens
                        relabel = rng.sample(range(1, 10), 9)
                        grid = [relabel[v - 1] for v in grid]
                    check(task, _block(grid), _solves(grid, puzzle))
    assert not disagreements, disagreements[:10]
