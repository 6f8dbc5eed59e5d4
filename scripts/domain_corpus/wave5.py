"""Fifth wave: more sub-topics per domain, each with its own phrasing (training only)."""

from __future__ import annotations

from engine import Family
from vocab import CITIES, FIRST, PRODUCTS, person


def _int(lo: int, hi: int):
    return lambda rng: str(rng.randint(lo, hi))


CODE = [
    Family("code/git", [
        "git says '{m}'. What do I do?", "How do I {g} in git?", "Explain what `git {c}` does and when to use it.",
    ], {"m": ["detached HEAD", "your branch has diverged", "refusing to merge unrelated histories", "non-fast-forward",
              "fatal: not a git repository"],
        "g": ["cherry-pick a commit", "stash only some files", "see who changed a line", "revert a merge", "delete a remote branch",
              "change the last commit message"],
        "c": ["reflog", "bisect", "rebase -i", "reset --hard", "worktree", "submodule update"]}, count=35),
    Family("code/mobile", [
        "In {p}, how do I {t}?", "My {p} app {b}. How do I fix it?", "What's the best way to {t} in {p}?",
    ], {"p": ["SwiftUI", "Jetpack Compose", "React Native", "Flutter", "Kotlin Android"],
        "t": ["show a list with pull-to-refresh", "store data offline", "handle push notifications", "navigate between screens",
              "request camera permission"],
        "b": ["crashes on rotation", "freezes when scrolling", "drains the battery", "shows a white screen on launch"]}, count=30),
    Family("code/security", [
        "How do I {s} in {f}?", "Is it safe to {u}?", "What's the right way to {s}?",
    ], {"s": ["hash passwords", "prevent SQL injection", "store API keys", "validate JWT tokens", "add CSRF protection",
              "rate-limit login attempts"],
        "f": ["Express", "Django", "Spring Boot", "Laravel", "Go"],
        "u": ["put secrets in environment variables", "use MD5 for passwords", "disable certificate verification in dev",
              "commit the .env file"]}, count=30),
    Family("code/data-structures", [
        "Why is {d} faster than {e} for {w}?", "When should I use {d} instead of {e}?", "How is {d} implemented internally?",
    ], {"d": ["a hash map", "a deque", "a binary heap", "a set", "an array", "a linked list"],
        "e": ["a list", "a sorted array", "a tree map", "a queue", "a vector"],
        "w": ["lookups", "inserting at the front", "finding the minimum", "checking membership", "iteration"]}, count=30),
]

MATH = [
    Family("math/geometry2", [
        "What is the sum of the interior angles of a {n}-sided polygon?", "A right triangle has a hypotenuse of {h} and one leg {a}. Find the other leg.",
        "Two angles of a triangle are {x} and {y} degrees. What is the third?", "How many edges does a {s} have?",
        "Find the distance between the points ({a}, {b}) and ({h}, {x}).",
    ], {"n": _int(5, 12), "h": _int(10, 25), "a": _int(3, 9), "b": _int(1, 9), "x": _int(20, 80), "y": _int(20, 80),
        "s": ["cube", "tetrahedron", "octahedron", "triangular prism", "square pyramid"]}, count=35),
    Family("math/angles-triangles", [
        "In a triangle with sides {a}, {b} and an included angle of {d} degrees, find the area.",
        "A {a} m pole casts a {b} m shadow. What is the angle of elevation of the sun?",
        "What is cos({d} degrees) to three decimals?", "Find the height of an isosceles triangle with base {a} and sides {b}.",
    ], {"a": _int(3, 12), "b": _int(5, 20), "d": lambda r: str(r.choice([25, 30, 40, 45, 60, 70]))}, count=30),
    Family("math/number-puzzles", [
        "What is the smallest number divisible by every number from 1 to {n}?", "Find two numbers whose sum is {s} and product is {p}.",
        "What is the next prime after {q}?", "How many zeros are at the end of {n}!?", "Is {q} a perfect square?",
    ], {"n": _int(8, 20), "s": _int(10, 30), "p": _int(20, 150), "q": _int(50, 500)}, count=30),
]

REASONING = [
    Family("reasoning/turn-games", [
        "{a} and {b} take turns {t}. {a} starts. Who can force a win, and how?",
        "Think about the game where players {t}. Is there a strategy that always wins for the second player?",
        "In a two-player game where you {t}, how do you reason backwards from the end?",
    ], {"a": list(FIRST[:8]), "b": list(FIRST[8:16]),
        "t": ["picking coins from either end of a row", "crossing out numbers from 1 to 9", "moving a token up to 3 squares",
              "placing dominoes on a board", "saying a number up to 3 higher than the last"]}, count=30),
    Family("reasoning/what-next-logic", [
        "Spot the rule: {r}. Does '{x}' fit the rule?", "I think the rule is '{g}'. Which example would disprove it?",
        "Which of these is the odd one out and why: {o}?",
    ], {"r": ["2, 4, 6 fits; 1, 3, 5 fits; 10, 20, 30 fits", "CAR fits, BUS fits, TRAIN doesn't"],
        "x": ["3, 2, 1", "VAN", "5, 10, 15"], "g": ["numbers go up by two", "words with three letters"],
        "o": ["hammer, saw, nail, drill", "oak, pine, rose, birch", "Mars, Venus, Sun, Jupiter", "whale, shark, dolphin, seal",
              "Spanish, French, Italian, German"]}, count=30),
    Family("reasoning/consequences", [
        "What would be the knock-on effects if {x}? Reason step by step.", "If {x}, who wins and who loses? Think it through.",
        "Predict what happens next if {x}, and explain the causal chain.",
    ], {"x": ["a town bans cars from its centre", "a company lets everyone work from anywhere", "all exams became open-book",
              "a country lowers the voting age to 16", "supermarkets stop using plastic bags", "a school starts at 10am"]},
        count=25),
    Family("reasoning/explain-why", [
        "Why would {a} even though {b}? Give the most plausible reasons.", "How can {a} when {b}? Reason it out.",
    ], {"a": ["a shop lower prices", "sales rise", "a team get slower", "traffic get worse", "people buy more umbrellas"],
        "b": ["demand is high", "the ads stopped", "we hired more people", "a new road opened", "it hasn't rained"]}, count=25),
]

WRITING = [
    Family("writing/kids", [
        "Write a rhyme for a children's book about {t}.", "Write a short story for a {a}-year-old about {t}.",
        "Write a silly song for kids about {t}.",
    ], {"t": ["brushing teeth", "a brave little snail", "sharing toys", "a moon that lost its glow", "the first day of school"],
        "a": _int(3, 8)}, count=30),
    Family("writing/branding", [
        "Write the brand voice guidelines for {b} in three sentences.", "Write a short 'our story' paragraph for {b}.",
        "Draft the tagline and the first line of a radio ad for {b}.", "Write a welcome sign text for {b}.",
    ], {"b": ["a family-run hardware store", "a surf school", "an eco laundry", "a neighbourhood cinema", "a sourdough bakery",
              "a vintage clothing shop"]}, count=30),
    Family("writing/creative-prompts", [
        "Write a scene that starts with the line '{l}'.", "Continue this story: '{l}'", "Use this first sentence for a short story: '{l}'",
    ], {"l": ["The letter arrived forty years late.", "Nobody in the village had ever seen snow.", "The robot asked for a day off.",
              "It was the last bus of the night.", "The map had one island too many."]}, count=25),
]

CHAT = [
    Family("chat/games-fun", [
        "What's a fun game to play with {w}?", "Do you know any good {g} for a road trip?", "Let's play {h}!",
        "Any party games that work for {n} people?",
    ], {"w": ["my grandparents", "a group of ten", "my little brother", "friends online"],
        "g": ["word games", "guessing games", "quiz games"], "h": ["20 questions", "would you rather", "a riddle game", "trivia"],
        "n": _int(4, 20)}, count=30),
    Family("chat/reactions", [
        "Wow, {x}!", "No way, {x}?", "Haha, {x}", "Aww {x}",
    ], {"x": ["that's amazing", "I didn't know that", "really", "that's so cute", "you're right", "that made my day",
              "I'm impressed", "tell me more"]}, count=20, wrap=False),
    Family("chat/food-drink", [
        "What's your favourite {f}?", "Is {d} healthier than {e}?", "What goes well with {f}?", "Best {f} in {c}?",
    ], {"f": ["cheese", "pasta dish", "breakfast", "dessert", "street food"], "d": ["tea", "oat milk", "brown rice", "honey"],
        "e": ["coffee", "cow's milk", "white rice", "sugar"], "c": list(CITIES)}, count=30),
]

EXTRACTION = [
    Family("extraction/sentiment-fields", [
        "For each comment, extract the product mentioned and whether the tone is positive or negative: {c}",
        "Return JSON with fields product, rating and complaint for each line: {c}",
        "Pull the star ratings out of these reviews: {c}",
    ], {"c": lambda r: " | ".join(f"{r.choice(PRODUCTS)}: {r.choice(['5 stars, love it', '2/5 broke fast', '4 stars, decent', '1 star, never arrived'])}"
                                  for _ in range(3))}, count=30),
    Family("extraction/people-roles", [
        "Who is mentioned in this text and what is each person's job? {t}", "Extract name and role pairs as a table: {t}",
    ], {"t": lambda r: f"{person(r)}, our new CFO, met {person(r)} (head of design) and the intern {person(r)}."}, count=20),
    Family("extraction/measurements", [
        "Extract every measurement and its unit from: {t}", "List the numbers in this text with what they measure: {t}",
    ], {"t": lambda r: (f"The room is {r.randint(3, 9)} m by {r.randint(3, 9)} m, the ceiling {r.randint(2, 4)}.{r.randint(0, 9)} m high "
                        f"and the heater uses {r.randint(500, 2000)} W.")}, count=20),
]
