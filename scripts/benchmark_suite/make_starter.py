"""Generate gateway/benchmark/suites/starter.jsonl, the starter benchmark suite (seeded, reproducible).

    python scripts/benchmark_suite/make_starter.py

Written for this project. Every reference is computed here (arithmetic in Python, code outputs by
running the snippet), never typed in, so the answers are right by construction. 36 items in each of
four domains: math (numeric / exact), code (exact output, regex, numeric), extraction (JSON-schema
validity with the expected values as constants, exact), reasoning (multiple choice, letter graded).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "gateway/benchmark/suites/starter.jsonl"
N = 36
NUM = " Give only the final number."


def _numeric(value: float, tol: float = 1e-6, relative: bool = False) -> dict:
    g = {"type": "numeric", "tolerance": tol}
    if relative:
        g["relative"] = True
    return g


def math_items(rng: random.Random) -> list[dict]:
    out = []
    makers = []

    def product():
        a, b = rng.randint(12, 99), rng.randint(12, 99)
        return f"What is {a} * {b}?", a * b, _numeric(a * b)

    def percent():
        p, n = rng.choice([5, 12, 15, 20, 35, 45]), rng.randint(20, 90) * 10
        v = p * n / 100
        return f"What is {p}% of {n}?", v, _numeric(v)

    def linear():
        x, a, b = rng.randint(-9, 15), rng.randint(2, 9), rng.randint(1, 40)
        return f"Solve for x: {a}x + {b} = {a * x + b}.", x, _numeric(x)

    def mean():
        xs = [rng.randint(1, 60) for _ in range(rng.randint(4, 7))]
        v = sum(xs) / len(xs)
        return f"What is the mean of {', '.join(map(str, xs))}? Round to two decimals.", round(v, 2), _numeric(v, 0.006)

    def circle():
        r = rng.randint(2, 15)
        v = math.pi * r * r
        return f"What is the area of a circle with radius {r}? Round to two decimals.", round(v, 2), _numeric(v, 0.006)

    def choose():
        n, k = rng.randint(6, 14), rng.randint(2, 5)
        v = math.comb(n, k)
        return f"In how many ways can you choose {k} items from {n}?", v, _numeric(v)

    def gcd():
        a, b = rng.randint(2, 30) * 6, rng.randint(2, 30) * 4
        return f"What is the greatest common divisor of {a} and {b}?", math.gcd(a, b), _numeric(math.gcd(a, b))

    def series():
        n = rng.randint(10, 200)
        return f"What is the sum of the integers from 1 to {n}?", n * (n + 1) // 2, _numeric(n * (n + 1) // 2)

    def fraction():
        a, b, c, d = rng.randint(1, 7), rng.randint(2, 9), rng.randint(1, 7), rng.randint(2, 9)
        v = Fraction(a, b) + Fraction(c, d)
        return (f"What is {a}/{b} + {c}/{d}? Answer as a fraction in lowest terms, like 3/4.", f"{v.numerator}/{v.denominator}",
                {"type": "exact"})

    def interest():
        p, r, t = rng.choice([1000, 2500, 5000]), rng.choice([2, 3, 4, 5]), rng.randint(2, 10)
        v = p * (1 + r / 100) ** t
        return (f"${p} is invested at {r}% interest compounded yearly. How many dollars after {t} years? "
                "Round to the cent.", round(v, 2), _numeric(v, 0.006))

    def power():
        b, e = rng.randint(2, 9), rng.randint(2, 6)
        return f"What is {b} to the power of {e}?", b ** e, _numeric(b ** e)

    def derivative():
        a, n, x = rng.randint(2, 7), rng.randint(2, 5), rng.randint(1, 4)
        v = a * n * x ** (n - 1)
        return f"What is the derivative of {a}x^{n} evaluated at x = {x}?", v, _numeric(v)

    makers = [product, percent, linear, mean, circle, choose, gcd, series, fraction, interest, power, derivative]
    seen: set[str] = set()
    for i in range(N):
        prompt, ref, grader = makers[i % len(makers)]()
        while prompt in seen:
            prompt, ref, grader = makers[i % len(makers)]()
        seen.add(prompt)
        suffix = "" if grader["type"] == "exact" else NUM
        out.append({"id": f"math-{i + 1:03d}", "domain": "math", "prompt": prompt + suffix, "reference": ref,
                    "grader": grader})
    return out


SNIPPETS = [
    "print(len('benchmark'))", "print(7 // 2, 7 % 2)", "print([1, 2, 3, 4, 5][1:4])", "print('-'.join(['a', 'b', 'c']))",
    "print(sorted([3, 1, 2], reverse=True))", "print(sum(x * x for x in range(5)))", "print('Hello'.upper()[::-1])",
    "d = {'a': 1}\nd['b'] = 2\nprint(len(d))", "print(2 ** 10)", "print(bool([]), bool([0]))",
    "x = [1, 2]\ny = x\ny.append(3)\nprint(x)", "print(round(2.675, 2))", "print('abc' * 2)", "print(list(range(2, 11, 3)))",
    "print(max('apple', 'pear', key=len))", "print({1, 2, 2, 3})", "print(int('101', 2))", "print('a,b,,c'.split(','))",
    "print(10 / 4)", "print(abs(-7) + min(3, 9))", "print([i for i in range(10) if i % 3 == 0])",
    "s = 'racecar'\nprint(s == s[::-1])", "print(divmod(17, 5))", "print(' x '.strip() + '!')",
]
KNOWLEDGE = [
    ("What is the worst-case time complexity of binary search on a sorted array? Answer in big-O notation.", "O(log n)",
     {"type": "regex", "pattern": r"O\(\s*log\s*\(?\s*n\s*\)?\s*\)", "flags": "i"}),
    ("What is the average time complexity of looking up a key in a hash table? Answer in big-O notation.", "O(1)",
     {"type": "regex", "pattern": r"O\(\s*1\s*\)"}),
    ("Which HTTP status code means 'Not Found'? Give only the number.", 404, {"type": "numeric", "tolerance": 0}),
    ("Which HTTP status code means 'Too Many Requests'? Give only the number.", 429, {"type": "numeric", "tolerance": 0}),
    ("Which Python built-in returns the number of items in a list? Give only its name.", "len",
     {"type": "regex", "pattern": r"\blen\b"}),
    ("Which git command creates a new branch and switches to it in one step (git 2.23+)? Give the command.",
     "git switch -c", {"type": "regex", "pattern": r"git\s+(switch\s+-c|checkout\s+-b)"}),
    ("Which SQL keyword removes duplicate rows from a SELECT result? Give only the keyword.", "DISTINCT",
     {"type": "regex", "pattern": r"\bDISTINCT\b", "flags": "i"}),
    ("What is the default port of PostgreSQL? Give only the number.", 5432, {"type": "numeric", "tolerance": 0}),
    ("How many bits are in a byte? Give only the number.", 8, {"type": "numeric", "tolerance": 0}),
    ("In JavaScript, which operator checks equality without type coercion? Give only the operator.", "===",
     {"type": "regex", "pattern": r"(?<![=!])===(?!=)"}),
    ("What does the HTML tag for the largest heading look like? Give only the opening tag.", "<h1>",
     {"type": "regex", "pattern": r"<h1>", "flags": "i"}),
    ("Which Python keyword defines a generator's produced value? Give only the keyword.", "yield",
     {"type": "regex", "pattern": r"\byield\b"}),
]


def _run(snippet: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(snippet, {})  # our own snippets, run once at generation time
    return buf.getvalue().strip()


def code_items(rng: random.Random) -> list[dict]:
    out = []
    for i, snippet in enumerate(SNIPPETS):
        out.append({"id": f"code-{i + 1:03d}", "domain": "code",
                    "prompt": f"What does this Python 3 code print? Answer with the exact output only.\n\n{snippet}",
                    "reference": _run(snippet), "grader": {"type": "exact", "case_sensitive": True}})
    for j, (prompt, ref, grader) in enumerate(KNOWLEDGE, start=len(SNIPPETS)):
        out.append({"id": f"code-{j + 1:03d}", "domain": "code", "prompt": prompt, "reference": ref, "grader": grader})
    return out[:N]


FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Esi", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemal", "Lena"]
LAST = ["Lopez", "Okafor", "Martin", "Ivanov", "Mensah", "Haddad", "Berg", "Sato", "Costa", "Weber", "Yilmaz", "Novak"]
ITEMS = ["desk lamp", "coffee grinder", "yoga mat", "backpack", "monitor stand", "kettle", "bike lock", "notebook set"]


def extraction_items(rng: random.Random) -> list[dict]:
    out = []
    for i in range(N):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first} {last}"
        email = f"{first.lower().replace('é', 'e')}.{last.lower()}@example.com"
        total = round(rng.randint(500, 50000) / 100, 2)
        order = rng.randint(10000, 99999)
        day = date(2024, 1, 1) + timedelta(days=rng.randint(0, 360))
        item = rng.choice(ITEMS)
        text = rng.choice([
            f"Hi, this is {name} ({email}). My order #{order} for a {item} was charged {total:.2f} EUR on {day:%d %B %Y} "
            "but it never arrived.",
            f"Order #{order} | customer: {name} <{email}> | item: {item} | total: EUR {total:.2f} | date: {day.isoformat()}",
            f"Dear support, I ({name}, {email}) paid €{total:.2f} for order {order} ({item}) on {day:%B %d, %Y}.",
        ])
        kind = i % 3
        if kind == 0:
            ref = {"name": name, "email": email, "total": total}
            schema = {"type": "object", "required": ["name", "email", "total"],
                      "properties": {"name": {"const": name}, "email": {"const": email},
                                     "total": {"type": "number", "minimum": total - 0.005, "maximum": total + 0.005}}}
            prompt = ("Extract the customer's name, email address and the order total (a number) from the text below. "
                      "Answer with a JSON object with the keys name, email and total.\n\n" + text)
            out.append({"id": f"extract-{i + 1:03d}", "domain": "extraction", "prompt": prompt, "reference": ref,
                        "grader": {"type": "json_schema", "schema": schema}})
        elif kind == 1:
            ref = {"order": order, "date": day.isoformat()}
            schema = {"type": "object", "required": ["order", "date"],
                      "properties": {"order": {"const": order}, "date": {"const": day.isoformat()}}}
            prompt = ("From the text below, extract the order number (an integer) and the order date in YYYY-MM-DD "
                      "format. Answer with a JSON object with the keys order and date.\n\n" + text)
            out.append({"id": f"extract-{i + 1:03d}", "domain": "extraction", "prompt": prompt, "reference": ref,
                        "grader": {"type": "json_schema", "schema": schema}})
        else:
            prompt = f"What is the customer's email address in this message? Answer with the address only.\n\n{text}"
            out.append({"id": f"extract-{i + 1:03d}", "domain": "extraction", "prompt": prompt, "reference": email,
                        "grader": {"type": "exact"}})
    return out


def _mc(question: str, right: str, wrong: list[str], rng: random.Random) -> tuple[str, str]:
    options = [right, *wrong[:3]]
    rng.shuffle(options)
    letters = "ABCD"
    body = "\n".join(f"{letters[k]}) {o}" for k, o in enumerate(options))
    return f"{question}\n\n{body}\n\nAnswer with the letter of the correct option.", letters[options.index(right)]


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def reasoning_items(rng: random.Random) -> list[dict]:
    out = []
    for i in range(N):
        kind = i % 4
        if kind == 0:
            people = rng.sample(FIRST, 4)
            order = people[:]  # tallest first
            facts = [f"{order[k]} is taller than {order[k + 1]}" for k in range(3)]
            rng.shuffle(facts)
            q = ". ".join(facts) + ". Who is the shortest?"
            question, letter = _mc(q, order[-1], order[:-1], rng)
        elif kind == 1:
            start, add = rng.randrange(7), rng.randint(3, 40)
            right = DAYS[(start + add) % 7]
            wrong = [d for d in DAYS if d != right]
            rng.shuffle(wrong)
            question, letter = _mc(f"Today is {DAYS[start]}. What day of the week will it be in {add} days?", right, wrong, rng)
        elif kind == 2:
            a, d = rng.randint(1, 9), rng.randint(2, 9)
            seq = [a + d * k for k in range(5)] if rng.random() < 0.5 else [a * 2 ** k for k in range(5)]
            nxt = seq[-1] + (seq[-1] - seq[-2]) if seq[2] - seq[1] == seq[1] - seq[0] else seq[-1] * 2
            wrong = [str(nxt + k) for k in (1, -1, d + 2)]
            question, letter = _mc(f"What number comes next: {', '.join(map(str, seq))}, ?", str(nxt), wrong, rng)
        else:
            a, b, c = rng.sample(["bloops", "razzies", "lazzies", "wugs", "florps", "snarks"], 3)
            valid = rng.random() < 0.5
            if valid:
                q = f"All {a} are {b}. All {b} are {c}. Which statement must be true?"
                right, wrong = f"All {a} are {c}.", [f"All {c} are {a}.", f"No {a} are {c}.", f"Some {c} are not {b}."]
            else:
                q = f"All {a} are {b}. Some {b} are {c}. Which statement must be true?"
                right = f"None of the other statements must be true."
                wrong = [f"Some {a} are {c}.", f"All {a} are {c}.", f"No {a} are {c}."]
            question, letter = _mc(q, right, wrong, rng)
        out.append({"id": f"reason-{i + 1:03d}", "domain": "reasoning", "prompt": question, "reference": letter,
                    "grader": {"type": "choice", "choices": ["A", "B", "C", "D"]}})
    return out


def main() -> int:
    rng = random.Random(19)
    items = math_items(rng) + code_items(rng) + extraction_items(rng) + reasoning_items(rng)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"{len(items)} items -> {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
