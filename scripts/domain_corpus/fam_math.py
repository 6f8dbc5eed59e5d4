"""math: arithmetic, algebra, calculus, probability, statistics, geometry, proofs, word problems."""

from __future__ import annotations

import random

from engine import Family, Pool


def _int(lo: int, hi: int):
    return lambda rng: str(rng.randint(lo, hi))


def _lin(rng: random.Random) -> str:
    a, b, c = rng.randint(2, 12), rng.randint(1, 40), rng.randint(1, 90)
    v = rng.choice("xyzn")
    return rng.choice([f"{a}{v} + {b} = {c}", f"{a}{v} - {b} = {c}", f"{b} - {a}{v} = {c}",
                       f"{a}({v} + {b}) = {c}", f"{v}/{a} + {b} = {c}"])


def _quad(rng: random.Random) -> str:
    r1, r2 = rng.randint(-9, 9), rng.randint(-9, 9)
    b, c = -(r1 + r2), r1 * r2
    return f"x^2 {'+' if b >= 0 else '-'} {abs(b)}x {'+' if c >= 0 else '-'} {abs(c)} = 0"


def _system(rng: random.Random) -> str:
    a, b, c, d = (rng.randint(1, 9) for _ in range(4))
    return f"{a}x + {b}y = {rng.randint(5, 60)} and {c}x - {d}y = {rng.randint(-20, 30)}"


FUNCS = Pool("x^3 sin(x)", "e^(2x) cos(x)", "ln(x^2 + 1)", "x^2 e^x", "sqrt(1 + x^2)", "tan(3x)", "1/(1 + x^2)",
             "x ln x", "sin^2(x)", "(3x + 1)^5", "arctan(x/2)", "e^(-x^2)", "x^4 - 3x^2 + 2", "cos(x)/x",
             "2^x", "x sqrt(x)", "sec(x)", "log_2(x)")
LIMITS = Pool(("sin(x)/x", "0"), ("(1 + 1/n)^n", "infinity"), ("(x^2 - 4)/(x - 2)", "2"), ("(e^x - 1)/x", "0"),
              ("x ln x", "0 from the right"), ("(3x^2 + 1)/(x^2 - 5)", "infinity"), ("(1 - cos x)/x^2", "0"),
              ("sqrt(x + 1) - sqrt(x)", "infinity"), ("tan(x)/x", "0"))
EVENTS = Pool("rolling two sixes with two dice", "getting at least one head in three coin flips",
              "drawing two aces from a shuffled deck without replacement", "rolling a sum of 7 with two dice",
              "two people in a room of 23 sharing a birthday", "getting exactly 3 heads in 5 flips",
              "drawing a red card and then a king", "a random 4-digit PIN having no repeated digits",
              "rolling at least one 6 in four rolls of a die", "getting a full house in poker",
              "picking 2 defective bulbs from a box of 20 with 4 defective", "a family with 3 kids having 2 girls")
COMBOS = Pool("5 people sit around a round table", "I choose 3 toppings out of 10",
              "the letters of MISSISSIPPI be arranged", "a committee of 4 be chosen from 12 people",
              "8 runners finish first, second and third", "I split 10 identical candies among 3 kids",
              "a 6-character password be made from lowercase letters", "7 books be arranged on a shelf",
              "a team of 5 be picked from 6 men and 4 women with at least 2 women",
              "I walk from one corner of a 4x4 grid to the opposite corner moving only right or up")


def _nums(rng: random.Random) -> str:
    xs = [rng.randint(1, 99) for _ in range(rng.randint(5, 9))]
    return ", ".join(map(str, xs))


SHAPES = Pool("circle with radius 7 cm", "triangle with sides 5, 12 and 13", "trapezoid with bases 6 and 10 and height 4",
              "regular hexagon with side 3", "sector with radius 10 and angle 60 degrees", "rectangle 8 by 15",
              "ellipse with semi-axes 4 and 9", "right triangle with legs 9 and 40", "rhombus with diagonals 10 and 24")
SOLIDS = Pool("a cylinder with radius 3 and height 10", "a sphere with radius 6", "a cone with radius 4 and height 9",
              "a cube with a 5 cm edge", "a square pyramid with base 6 and height 8",
              "a rectangular box 2 by 3 by 7", "a hemisphere with diameter 12")
PROOFS = Pool("the square root of 2 is irrational", "there are infinitely many primes",
              "the sum of the first n odd numbers is n^2", "every integer greater than 1 has a prime factor",
              "n^3 - n is divisible by 6 for every integer n", "the angles of a triangle add up to 180 degrees",
              "a graph with n vertices and no cycles has at most n - 1 edges", "e is irrational",
              "the harmonic series diverges", "1 + 2 + ... + n = n(n + 1)/2 by induction",
              "the product of two odd numbers is odd", "there is no largest even number")
MATRICES = Pool("[[2, 1], [1, 2]]", "[[4, -2], [1, 1]]", "[[1, 2, 3], [0, 1, 4], [5, 6, 0]]", "[[0, 1], [-1, 0]]",
                "[[3, 0, 0], [0, 2, 0], [0, 0, 1]]", "[[6, 2], [2, 3]]", "[[1, 1], [0, 1]]")
SEQS = Pool("2, 5, 8, 11, ...", "3, 6, 12, 24, ...", "1, 1/2, 1/4, 1/8, ...", "the first n squares",
            "1/(n(n+1))", "100, 95, 90, ...", "the Fibonacci numbers", "1/n^2")

# word problems
ITEMS = Pool("apples", "notebooks", "concert tickets", "litres of paint", "bags of rice", "bus passes", "tiles",
             "kilograms of flour", "seedlings", "boxes of cereal")


def _pct(rng: random.Random) -> str:
    return str(rng.choice([5, 8, 12, 15, 17.5, 20, 25, 33, 40, 65]))


def _latex(rng: random.Random) -> str:
    n, u = rng.randint(5, 100), rng.randint(1, 4)
    return rng.choice([
        f"\\int_0^{u} x^{rng.randint(2, 5)} \\, dx", f"\\sum_{{k=1}}^{{{n}}} k^2",
        "\\lim_{x \\to 0} \\frac{\\sin x}{x}", f"\\frac{{d}}{{dx}} \\left( x^{rng.randint(2, 6)} e^x \\right)",
        f"\\binom{{{n}}}{{{u}}}", f"\\sqrt{{{rng.randint(2, 20) ** 2}}} + \\frac{{{n}}}{{{u + 1}}}",
    ])


FAMILIES = [
    Family("math/arithmetic", [
        "What is {a} * {b}?", "Calculate {a} + {b} - {c}.", "What's {a} divided by {c}?",
        "Compute {p}% of {big}.", "What is {k} to the power of {e}?", "{a} x {b} = ?",
        "How much is {big} minus {a} times {c}?", "Can you work out {a} * {b} + {c} without a calculator?",
        "What is the square root of {sq}?", "Round {big}.{c} / {a} to two decimal places.",
    ], {"a": _int(12, 999), "b": _int(3, 99), "c": _int(2, 60), "big": _int(1000, 99999), "p": _pct,
        "k": _int(2, 13), "e": _int(2, 12), "sq": lambda r: str(r.randint(4, 40) ** 2)}, count=60),
    Family("math/algebra", [
        "Solve for x: {lin}", "Solve {quad}.", "Find x if {lin}.", "Solve the system {sys}.",
        "What are the roots of {quad}?", "Factor x^2 + {b}x + {c}.", "Simplify ({a}x^2 - {b}x) / x.",
        "Expand (x + {a})(x - {b}).", "Solve the inequality {a}x - {b} > {c}.",
        "How do I solve {quad} by completing the square?",
    ], {"lin": _lin, "quad": _quad, "sys": _system, "a": _int(2, 9), "b": _int(1, 12), "c": _int(1, 30)},
        count=60),
    Family("math/calculus", [
        "Find the derivative of {f}.", "What is d/dx of {f}?", "Integrate {f} dx.",
        "Compute the integral of {f} from 0 to {u}.", "Differentiate {f} with respect to x.",
        "What is the limit of {lim.0} as x approaches {lim.1}?", "Find the second derivative of {f}.",
        "Evaluate the definite integral of {f} between 1 and {u}.", "Where does {f} have a local maximum?",
        "Find the Taylor series of {f} around 0 up to the x^4 term.",
    ], {"f": FUNCS, "lim": LIMITS, "u": _int(2, 5)}, count=60),
    Family("math/probability", [
        "What is the probability of {event}?", "How many ways can {combo}?",
        "Compute the probability of {event}, showing the formula.", "In how many ways can {combo}?",
        "What are the odds of {event}?", "What is the expected value of {ev}?",
    ], {"event": EVENTS, "combo": COMBOS,
        "ev": ["the sum of two dice", "a lottery ticket that pays $100 with probability 1/500",
               "the number of heads in 10 fair coin flips", "a bet that wins $5 with p = 0.4 and loses $3 otherwise"]},
        count=50),
    Family("math/statistics", [
        "Compute the mean, median and standard deviation of {nums}.", "What is the variance of {nums}?",
        "Find the interquartile range of {nums}.", "Given the data {nums}, what is the mode and the range?",
        "Calculate a 95% confidence interval for the mean of {nums}.",
        "What's the z-score of {a} if the mean is {b} and the standard deviation is {c}?",
    ], {"nums": _nums, "a": _int(60, 99), "b": _int(40, 70), "c": _int(3, 15)}, count=40),
    Family("math/geometry", [
        "What is the area of a {shape}?", "Find the perimeter of a {shape}.", "What's the volume of {solid}?",
        "Compute the surface area of {solid}.", "How long is the diagonal of a rectangle {a} by {b}?",
        "Find the angle between the vectors ({a}, {b}) and ({b}, -{a}).",
    ], {"shape": SHAPES, "solid": SOLIDS, "a": _int(2, 20), "b": _int(2, 20)}, count=45),
    Family("math/number-theory", [
        "Find the prime factorization of {n}.", "What is the GCD of {n} and {m}?", "What is the LCM of {a} and {b}?",
        "List the primes between {a} and {n}.", "What is {n} mod {a}?", "Find the last digit of {a}^{b}.",
        "How many divisors does {n} have?", "Is {n} divisible by {a}?",
    ], {"n": _int(100, 5000), "m": _int(50, 900), "a": _int(3, 40), "b": _int(10, 200)}, count=40),
    Family("math/linear-algebra", [
        "Find the eigenvalues of the matrix {m}.", "What is the determinant of {m}?", "Invert the matrix {m}.",
        "Multiply {m} by {m2}.", "Is {m} diagonalizable?", "Find the rank of {m}.",
    ], {"m": MATRICES}, count=30),
    Family("math/proofs", [
        "Prove that {p}.", "How would you prove that {p}?", "Give a rigorous proof that {p}.",
        "Show that {p}.", "Can you sketch a proof that {p}?",
    ], {"p": PROOFS}, count=35),
    Family("math/finance", [
        "If I invest ${a} at {r}% interest compounded annually, how much will I have after {t} years?",
        "A ${a} loan at {r}% per year for {t} years: what is the monthly payment?",
        "What is {r}% simple interest on ${a} over {t} years?",
        "Prices rose {r}% this year. What does something that cost ${a} cost now?",
    ], {"a": _int(500, 50000), "r": _pct, "t": _int(2, 30)}, count=30),
    Family("math/series", [
        "Find the sum of the first {n} terms of {s}.", "Does the series of {s} converge?",
        "What is the nth term of {s}?", "Sum the infinite series {s}.",
    ], {"s": SEQS, "n": _int(5, 50)}, count=25),
    Family("math/es", [
        "Resuelve la ecuación {lin}.", "¿Cuál es la derivada de {f}?", "Calcula la integral de {f}.",
        "¿Cuánto es {a} por {b}?", "¿Cuál es la probabilidad de sacar dos seises con dos dados?",
    ], {"lin": _lin, "f": FUNCS, "a": _int(12, 999), "b": _int(3, 99)}, count=15, lang="es", wrap=False),
    Family("math/fr", [
        "Résous l'équation {lin}.", "Quelle est la dérivée de {f} ?", "Calcule {a} fois {b}.",
        "Combien font {a} plus {b} ?",
    ], {"lin": _lin, "f": FUNCS, "a": _int(12, 999), "b": _int(3, 99)}, count=12, lang="fr", wrap=False),
    Family("math/de", [
        "Löse die Gleichung {lin}.", "Was ist die Ableitung von {f}?", "Berechne das Integral von {f}.",
        "Wie viel ist {a} mal {b}?",
    ], {"lin": _lin, "f": FUNCS, "a": _int(12, 999), "b": _int(3, 99)}, count=12, lang="de", wrap=False),
    Family("math/mixed", [
        "Necesito ayuda: solve {lin} paso a paso", "Kannst du mir helfen, the derivative of {f} zu finden?",
        "j'ai un exercice: integrate {f}, merci",
    ], {"lin": _lin, "f": FUNCS}, count=10, lang="mixed", wrap=False),

    # ---- held out
    Family("math/ratio-word", [
        "A recipe needs {a} cups of flour for {b} cookies. How many cups do I need for {c} cookies?",
        "If {a} workers build a wall in {b} days, how long would {c} workers take?",
        "{a} {item} cost ${b}. How much do {c} {item} cost?",
        "A car uses {a} litres of fuel per 100 km. How much fuel for a {big} km trip?",
        "My bill is ${big} and I want to leave a {p}% tip. How much is that?",
        "Split ${big} between three people in the ratio {a}:{b}:{c}.",
    ], {"a": _int(2, 9), "b": _int(10, 48), "c": _int(3, 90), "item": ITEMS, "big": _int(120, 980), "p": _pct},
        count=45, held_out=True),
    Family("math/trig", [
        "What is sin(30°) + cos(60°)?", "Solve 2 sin x = 1 for x in [0, 2π].", "Simplify sin^2 x + cos^2 x + tan^2 x.",
        "Convert {d} degrees to radians.", "What is the exact value of tan({d}°)?",
        "A ladder {a} m long leans against a wall at {d} degrees. How high does it reach?",
    ], {"d": lambda r: str(r.choice([15, 30, 45, 60, 75, 120, 135, 150, 210])), "a": _int(3, 12)},
        count=30, held_out=True),
    Family("math/check-work", [
        "I got x = {v} for {lin}. Is that right?", "My answer for the derivative of {f} was wrong, where did I slip?",
        "Can you check my homework: {a} * {b} = {v}?", "Verify whether {v} is a solution of {quad}.",
    ], {"v": _int(-9, 40), "lin": _lin, "f": FUNCS, "a": _int(12, 99), "b": _int(3, 99), "quad": _quad},
        count=30, held_out=True),
    Family("math/latex", [
        "{latex} = ?", "Evaluate {latex}", "Compute {latex} and show the steps.", "how do i do {latex}",
    ], {"latex": _latex}, count=20, held_out=True),
    Family("math/held-lang", [
        "¿Cuántas maneras hay de ordenar {a} libros en una estantería?",
        "Quel est le volume d'une sphère de rayon {a} ?",
        "Wie groß ist die Wahrscheinlichkeit, mit zwei Würfeln eine {b} zu würfeln?",
        "Quanto é {a} elevado a {b}?",
    ], {"a": _int(3, 12), "b": _int(2, 12)}, count=12, held_out=True, lang="mixed", wrap=False),
]

# ---- more training breadth
UNITS = Pool(("minutes", "a day"), ("ounces", "a pound"), ("centimetres", "a mile"), ("millilitres", "a gallon"),
             ("hours", "a year"), ("square feet", "an acre"), ("grams", "a kilogram"), ("seconds", "an hour"),
             ("inches", "a metre"), ("days", "a decade"), ("cups", "a litre"), ("metres", "a kilometre"))
CONCEPTS = Pool("a logarithm", "a derivative", "an integral", "a prime number", "a matrix", "a vector", "standard deviation",
                "a limit", "a function", "the Pythagorean theorem", "a complex number", "the quadratic formula",
                "a geometric series", "a permutation", "a polynomial", "pi", "an asymptote", "the chain rule",
                "a p-value", "a factorial", "modular arithmetic", "a normal distribution")


def _frac(rng: random.Random) -> str:
    a, b, c, d = rng.randint(1, 9), rng.randint(2, 12), rng.randint(1, 9), rng.randint(2, 12)
    return rng.choice([f"{a}/{b} + {c}/{d}", f"{a}/{b} - {c}/{d}", f"{a}/{b} times {c}/{d}", f"{a}/{b} divided by {c}/{d}"])


FAMILIES += [
    Family("math/units", [
        "How many {u.0} are in {u.1}?", "Convert {n} {u.0} into {u.1} units.", "How many {u.0} make {u.1}?",
        "Convert {n} km to miles.", "What is {n} degrees Celsius in Fahrenheit?",
    ], {"u": UNITS, "n": _int(3, 500)}, count=35),
    Family("math/fractions", [
        "What is {f}?", "Simplify {a}/{b}.", "Is {a}/{b} bigger than 0.{c}?", "Convert {a}/{b} to a decimal.",
        "Write 0.{c} as a fraction.", "Calculate {f} and simplify the result.",
    ], {"f": _frac, "a": _int(2, 40), "b": _int(3, 60), "c": _int(1, 95)}, count=40),
    Family("math/percent", [
        "What is {p}% off ${n}?", "${n} increased by {p}% is what?", "What percent of {n} is {m}?",
        "If something went from ${m} to ${n}, what's the percentage change?", "How do I work out {p}% of a number?",
    ], {"p": _pct, "n": _int(50, 900), "m": _int(10, 400)}, count=35),
    Family("math/speed-time", [
        "If I drive {d} km in {t} hours, what is my average speed?",
        "A train travels at {s} km/h. How long does it take to cover {d} km?",
        "How far do I get in {t} hours at {s} mph?",
        "Two cars start {d} km apart and drive towards each other at {s} and {s2} km/h. When do they meet?",
    ], {"d": _int(40, 900), "t": _int(2, 9), "s": _int(30, 140)}, count=30),
    Family("math/concepts", [
        "What is {c}?", "Explain {c} in simple terms.", "Can you give me an intuitive explanation of {c}?",
        "Why does {c} matter, with a worked example?", "What's the definition of {c}?",
    ], {"c": CONCEPTS}, count=40),
    Family("math/powers-logs", [
        "What is log base {b} of {n}?", "Compute the cube root of {cube}.", "What is {b}^{e} mod {m}?",
        "Solve {b}^x = {n}.", "What is ln(e^{e})?", "Convert {n} to binary.", "What is {n} in base {b}?",
    ], {"b": _int(2, 9), "n": _int(16, 4096), "e": _int(2, 10), "m": _int(3, 17), "cube": lambda r: str(r.randint(2, 20) ** 3)},
        count=35),
    Family("math/word-simple", [
        "{name} has {a} marbles and gives {b} to a friend, then buys {c} more. How many does {name} have?",
        "A class has {a} students and {b} of them are absent. What fraction is present?",
        "Tickets cost ${b} for adults and ${c} for kids. How much for 2 adults and {c} kids?",
        "A rectangle's length is {a} and its width is {b} less. What is its area?",
        "{name} reads {b} pages a day. How many days to finish a {a}0-page book?",
    ], {"name": ["Sam", "Mia", "Raj", "Lena", "Omar", "Kate"], "a": _int(12, 90), "b": _int(2, 11), "c": _int(3, 25)},
        count=40),
    Family("math/graphs-functions", [
        "What are the slope and y-intercept of y = {a}x + {b}?", "Find the vertex of y = x^2 - {a}x + {b}.",
        "Where do y = {a}x + {b} and y = -x + {c} intersect?", "Is f(x) = x^{a} even, odd or neither?",
        "What is the domain of f(x) = sqrt(x - {a})?", "Find f(g(2)) if f(x) = {a}x and g(x) = x + {b}.",
    ], {"a": _int(2, 9), "b": _int(1, 20), "c": _int(1, 30)}, count=35),
]

# ---- third wave (templates distinct from the held-out trig / ratio families)
FAMILIES += [
    Family("math/trig-identities", [
        "Prove the identity tan x = sin x / cos x.", "If sin θ = {a}/{h}, find cos θ and tan θ.", "What is the period of sin({a}x)?",
        "Use the law of cosines to find the third side if two sides are {a} and {b} with an angle of {d} degrees between them.",
        "Find all solutions of cos(2x) = 0.", "What is arcsin(0.5) in degrees?",
    ], {"a": _int(1, 9), "h": _int(10, 13), "b": _int(3, 15), "d": lambda r: str(r.choice([30, 45, 60, 90, 120]))}, count=30),
    Family("math/proportion", [
        "If {a} pens cost {b} euros, how much do {c} pens cost?", "A map scale is 1:{n}. How far is {a} cm on the map in reality?",
        "x is directly proportional to y, and x = {a} when y = {b}. Find x when y = {c}.",
        "Scale a recipe for {a} people up to {c} people: {b} eggs become how many?",
        "Mix concrete in the ratio {a}:{b}. How much sand for {c} kg of cement?",
    ], {"a": _int(2, 12), "b": _int(3, 30), "c": _int(4, 50), "n": lambda r: str(r.choice([25000, 50000, 100000]))},
        count=35),
    Family("math/verify", [
        "Is x = {v} a solution of {lin}?", "Did I simplify correctly: ({a}x + {b}) / {a} = x + {b}?",
        "Check this: the integral of {f} is what I wrote, right?", "Is it true that {a}^2 + {b}^2 = {v}?",
    ], {"v": _int(1, 200), "lin": _lin, "a": _int(2, 12), "b": _int(2, 12), "f": FUNCS}, count=25),
]
