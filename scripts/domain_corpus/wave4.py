"""Fourth wave of training families: a second family for sub-areas that only one family covered
(found by leave-family-out cross-validation on the training part, never by the held-out part)."""

from __future__ import annotations

import random

from engine import Family, Pool
from vocab import CITIES, COMPANIES, FIRST, PRODUCTS, date, money, person


def _int(lo: int, hi: int):
    return lambda rng: str(rng.randint(lo, hi))


CODE = [
    Family("code/sql2", [
        "My query `{q}` is slow on a big table. Which index should I add?", "Rewrite `{q}` using a JOIN instead of a subquery.",
        "What's wrong with `{q}`? It returns nothing.", "Convert this query to the Django ORM: {q}",
        "How do I do an upsert in {db}?", "What's the difference between WHERE and HAVING in {db}?",
    ], {"q": ["SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)", "SELECT name FROM t WHERE name = NULL",
              "SELECT COUNT(*) FROM events GROUP BY date(ts)", "SELECT * FROM logs ORDER BY created DESC LIMIT 10 OFFSET 100000",
              "DELETE FROM carts WHERE updated < now() - interval '30 days'"],
        "db": ["PostgreSQL", "MySQL", "SQLite", "SQL Server", "BigQuery"]}, count=30),
    Family("code/concepts2", [
        "Is {c} something I need to learn as a beginner programmer?", "Give me a real-world analogy for {c} in software.",
        "Explain {c} and show a bug it prevents.", "Why do senior devs talk so much about {c}?",
        "What's a common mistake people make with {c} in their code?",
    ], {"c": Pool("immutability", "pure functions", "interfaces", "exceptions", "unit testing", "version control",
                  "code smells", "technical debt", "caching", "thread safety", "null safety", "type inference",
                  "asynchronous programming", "event-driven architecture", "object-oriented programming", "API rate limits")},
        count=40),
    Family("code/install2", [
        "The command `{cmd}` says 'command not found'. What did I miss?", "How do I check which version of {tool} is installed?",
        "I installed {tool} but my editor doesn't see it. Path problem?", "Uninstall {tool} completely from my laptop, how?",
    ], {"cmd": ["npm", "python3", "docker compose", "cargo", "javac", "kubectl", "pip"],
        "tool": ["Python", "Node", "Java", "Git", "the Go toolchain", "Rust", "PostgreSQL", "the .NET SDK"]}, count=30),
    Family("code/spreadsheet2", [
        "My VLOOKUP returns #N/A even though the value exists. Why?", "Excel: {f} returns #VALUE!, how do I fix it?",
        "Write an Apps Script that {a}.", "How do I use {f} across two sheets?", "Power Query: how do I {pq}?",
    ], {"f": ["SUMIFS", "INDEX/MATCH", "XLOOKUP", "COUNTIF", "FILTER", "ARRAYFORMULA", "IFERROR"],
        "a": ["copies new form responses to another sheet", "emails me every Monday with a summary", "deletes rows older than a year"],
        "pq": ["unpivot columns", "merge two tables", "remove duplicates", "split a column by delimiter"]}, count=30),
    Family("code/tests2", [
        "My {fw} test passes locally but fails in CI. What usually causes that?", "How do I mock the current time in {fw}?",
        "What's the difference between a mock and a stub in {fw}?", "How do I measure test coverage with {fw}?",
        "How can I test code that calls an external API with {fw}?",
    ], {"fw": Pool("pytest", "Jest", "JUnit", "RSpec", "Go test", "Vitest", "NUnit", "Mocha")}, count=30),
    Family("code/library2", [
        "Which library should I use in {lang} for {need}?", "Is {lib} still maintained, or is there a better alternative?",
        "How do I add {lib} to my {lang} project?",
    ], {"lang": ["Python", "JavaScript", "Go", "Rust", "Java", "C#"],
        "need": ["parsing dates", "making HTTP requests", "reading Excel files", "logging", "dependency injection", "PDF generation"],
        "lib": ["moment.js", "requests", "lodash", "Joda-Time", "log4j", "Newtonsoft.Json", "serde", "cobra"]}, count=25),
]

MATH = [
    Family("math/word-simple2", [
        "{n} friends share {m} slices of pizza equally. How many slices each, and how many left over?",
        "A box holds {a} eggs. How many boxes for {m} eggs?", "{name} earns ${a} an hour. How much for {b} hours?",
        "If a bus leaves every {a} minutes starting at 8:00, when is the {b}th bus?",
        "A garden is {a} m by {b} m. How much fencing goes around it?",
    ], {"n": _int(3, 9), "m": _int(20, 200), "a": _int(6, 30), "b": _int(3, 12), "name": list(FIRST)}, count=40),
    Family("math/concepts2", [
        "Why does dividing by zero not work?", "What's the difference between {a} and {b} in math?",
        "Can you explain {c} without any formulas first, then with them?", "When would I use {c} in real life?",
        "My teacher mentioned {c}. What is it?",
    ], {"a": ["mean", "permutations", "area", "a ratio", "an equation", "a sequence"],
        "b": ["median", "combinations", "perimeter", "a fraction", "an expression", "a series"],
        "c": Pool("the derivative", "integration", "variance", "prime factorisation", "vectors", "exponential growth",
                  "the unit circle", "imaginary numbers", "logarithms", "conditional probability", "matrices", "limits")},
        count=40),
    Family("math/speed-work", [
        "Pipe A fills a tank in {a} hours and pipe B in {b} hours. Together, how long?",
        "I walk at {a} km/h and jog at {b} km/h. How long for {c} km if I jog half of it?",
        "A plane flies {c} km with a tailwind in {a} hours and back in {b} hours. What is the wind speed?",
        "How long does it take to download a {c} GB file at {a} MB/s?",
    ], {"a": _int(2, 9), "b": _int(3, 12), "c": _int(10, 900)}, count=30),
    Family("math/probability2", [
        "I draw {k} cards from a deck. What is the chance they are all {s}?", "Expected number of rolls to get a {d} on a die?",
        "What's the probability that a random number from 1 to {n} is divisible by {d}?",
        "Compute P(A or B) if P(A) = 0.{a}, P(B) = 0.{b} and they are independent.",
    ], {"k": _int(2, 5), "s": ["hearts", "red", "face cards", "aces"], "d": _int(2, 6), "n": _int(50, 500),
        "a": _int(1, 6), "b": _int(1, 6)}, count=30),
    Family("math/proofs2", [
        "Use induction to show that 2^n > n for all n >= 1.", "Show that the composition of two injective functions is injective.",
        "Prove by contradiction that there is no smallest positive rational number.",
        "Prove that {n} is not a perfect square.", "Show that the sum of two even numbers is even, formally.",
    ], {"n": _int(2, 99)}, count=20),
]

REASONING = [
    Family("reasoning/letters-numbers", [
        "Each letter stands for a digit: SEND + MORE = MONEY. How do you solve it logically?",
        "Crack the code: {c} Explain each deduction.", "If CAT is coded as {x}, how is DOG coded? Explain the rule.",
        "What letter completes the series {s}?",
    ], {"c": ["682 has one correct digit in the right place; 614 one correct but wrongly placed; 206 two correct but wrongly placed; 738 nothing correct.",
              "a three-digit lock: 291 one digit right and in place, 245 one digit right but misplaced, 463 nothing right."],
        "x": ["DBU", "3-1-20", "XZG"], "s": ["B, D, G, K, ?", "Z, W, T, Q, ?", "A, E, I, M, ?"]}, count=15),
    Family("reasoning/analogy2", [
        "Find the relationship: {a} relates to {b} the same way {c} relates to what?",
        "Which pair has the same relationship as {a}:{b}? {opts}",
    ], {"a": ["thermometer", "pilot", "chapter", "seed", "wheel"], "b": ["temperature", "plane", "book", "plant", "car"],
        "c": ["clock", "captain", "verse", "egg", "wing"], "opts": ["(a) brush:paint (b) ruler:length (c) pen:ink",
                                                                  "(a) actor:stage (b) chef:kitchen (c) driver:road"]},
        count=25),
    Family("reasoning/syllogism2", [
        "Premises: {p1} {p2} Which conclusion is valid: (a) {c1} (b) {c2}? Justify.",
        "Does '{c1}' follow from '{p1} {p2}'?",
    ], {"p1": ["No artists are accountants.", "Every poet is a dreamer.", "Some drivers are teachers.", "All tulips are flowers."],
        "p2": ["Some accountants are musicians.", "No dreamer is practical.", "All teachers are readers.", "Some flowers fade fast."],
        "c1": ["Some musicians are not artists.", "No poet is practical.", "Some drivers are readers.", "Some tulips fade fast."],
        "c2": ["No musicians are artists.", "Some practical people are poets.", "All readers drive.", "All flowers are tulips."]},
        count=35),
    Family("reasoning/estimation2", [
        "Roughly how long would it take to {x}? Lay out your assumptions.", "Sanity-check this claim with rough numbers: {y}",
        "Order of magnitude: {z}? Reason it out.",
    ], {"x": ["walk around the Earth", "read every book in a public library", "count to a billion", "fill a stadium with sand"],
        "y": ["a city of 1 million produces 10 tonnes of rubbish a day", "the average person spends a year of life on the phone"],
        "z": ["how many words in all of Wikipedia", "how heavy is all the air in a classroom", "how many heartbeats in a lifetime"]},
        count=25),
    Family("reasoning/planning2", [
        "I need to {a}, {b} and {c} before {t}. Which order minimises waiting, and why?",
        "Given that {b} must happen after {a} and {c} takes the longest, how would you schedule the day?",
    ], {"a": ["get the car serviced", "pick up the kids", "buy groceries", "call the bank", "drop off a parcel"],
        "b": ["cook dinner", "go to the gym", "attend a meeting at 2pm", "pay the bills", "wash the car"],
        "c": ["finish a report", "clean the flat", "take the dog to the vet", "study for two hours"],
        "t": ["6pm", "the weekend", "my flight at noon"]}, count=30),
    Family("reasoning/probability-intuition", [
        "Linda is 31, outspoken and studied philosophy. Is it more likely she's a bank teller, or a bank teller and an activist? Why?",
        "Why do people think a coin is 'due' for tails after many heads? Explain the reasoning error.",
        "A test is 95% accurate for a rare condition. Why might most positive results still be false? Explain intuitively.",
        "Is it more likely to get exactly 50 heads in 100 flips, or between 45 and 55? Reason without heavy maths.",
        "Two children, at least one is a boy. Why is the chance of two boys not one half?",
    ], {}, count=10),
]

WRITING = [
    Family("writing/poem2", [
        "Can you turn {t} into a little rhyme for a greeting card?", "I'd love some verses about {t}, something gentle.",
        "Write lines of poetry that capture the feeling of {t}.", "Compose something poetic, eight lines, on {t}.",
    ], {"t": Pool("a grandmother's garden", "the last day of school", "a cup of tea in winter", "waiting at an airport",
                  "a new baby", "old friends", "the city at dawn", "rain on a tin roof", "moving to a new country")}, count=30),
    Family("writing/titles2", [
        "Brainstorm chapter titles for {t}.", "What are some catchy names for {t}?", "Give me a memorable headline about {t}.",
    ], {"t": ["a cookbook for students", "a fantasy trilogy", "a talk on climate policy", "a travel vlog series",
              "a newsletter about science", "a course on public speaking"]}, count=20),
    Family("writing/email2", [
        "Can you reply to this email for me, politely saying no? '{m}'", "Write a follow-up to this message that got no answer: '{m}'",
        "Make my reply to this sound warmer: '{m}'",
    ], {"m": ["Could you present at our conference next month?", "Are you free to join the project kickoff on Friday?",
              "We'd like to offer you the position starting June 1.", "Can you cover my shift on Saturday?"]}, count=20),
]

CHAT = [
    Family("chat/life-howto2", [
        "What's the easiest way to {x}?", "Is there a simple trick to {x}?", "How long does it take to {x}?",
        "I've never managed to {x}. Any advice?",
    ], {"x": Pool("learn to swim as an adult", "get my toddler to sleep", "make good coffee at home", "remember names",
                  "grow tomatoes on a balcony", "train my puppy to sit", "iron a shirt", "make small talk at parties",
                  "pack a suitcase efficiently", "stop biting my nails", "wake up without snoozing", "keep basil alive")},
        count=35),
    Family("chat/words2", [
        "What's the origin of the expression '{e}'?", "Do people still say '{e}'?", "Is '{e}' British or American?",
        "Explain the slang '{s}' to me, I'm old.",
    ], {"e": ["the whole nine yards", "raining buckets", "cheers mate", "y'all", "bless your heart", "chuffed to bits"],
        "s": ["no cap", "slay", "mid", "sus", "bussin", "it's giving"]}, count=25),
    Family("chat/trivia2", [
        "Who was the first person to {x}?", "When was {y} invented?", "Where is {z}?", "How tall is {z}?",
    ], {"x": ["climb Everest", "walk on the moon", "fly across the Atlantic solo", "sail around the world"],
        "y": ["the bicycle", "chocolate", "the internet", "the microwave", "glasses"],
        "z": ["the Eiffel Tower", "Machu Picchu", "the Statue of Liberty", "Angkor Wat", "the Burj Khalifa"]}, count=30),
    Family("chat/advice2", [
        "My friend is {s}. What should I say to her?", "How do I tell my {r} that {t} without hurting them?",
        "What do you do when {w}?",
    ], {"s": ["going through a breakup", "nervous about her exams", "moving abroad", "grieving her cat"],
        "r": ["roommate", "mum", "best friend", "boss"], "t": ["I'm moving out", "I need space", "I can't come to the wedding"],
        "w": ["you can't sleep", "you feel lazy", "you're homesick", "everything feels too much"]}, count=30),
    Family("chat/opinion2", [
        "Which is better, {a} or {b}?", "Would you pick {a} or {b} for a weekend?", "Is {a} more fun than {b}?",
    ], {"a": ["the beach", "books", "tea", "Star Wars", "summer", "cats", "board games"],
        "b": ["the mountains", "movies", "coffee", "Star Trek", "winter", "dogs", "video games"]}, count=25),
]

EXTRACTION = [
    Family("extraction/feedback2", [
        "Pull out every complaint from these survey answers and count how often each appears: {f}",
        "From these comments, list the features people asked for: {f}",
        "Extract (customer, issue) pairs from this support log: {l}",
    ], {"f": lambda r: " / ".join(r.sample(["too slow on Android", "please add dark mode", "export to PDF would help",
                                               "login fails", "wish it had offline mode", "billing page confusing",
                                               "needs a calendar view"], 4)),
        "l": lambda r: "; ".join(f"{person(r)}: {r.choice(['refund not received', 'app crashes', 'wrong size', 'late delivery'])}"
                                 for _ in range(3))}, count=30),
    Family("extraction/minutes", [
        "From these minutes, list every decision with its date: {m}", "Who agreed to do what in this summary? {m}",
        "Extract the attendees and the next meeting date from: {m}",
    ], {"m": lambda r: (f"Attendees: {person(r)}, {person(r)}, {person(r)}. Agreed on {date(r)} to hire two engineers; "
                        f"{person(r)} to draft the budget. Next meeting {date(r)} in {r.choice(CITIES)}.")}, count=25),
    Family("extraction/orders", [
        "Extract order id, product and price from these lines: {o}", "Make a table of the products ordered here: {o}",
        "What is the most expensive item in this order list, and its id? {o}",
    ], {"o": lambda r: "; ".join(f"#{r.randint(1000, 9999)} {r.choice(PRODUCTS)} {money(r)}" for _ in range(3))}, count=25),
    Family("extraction/company-facts", [
        "Extract company, founding year and headquarters from: {t}", "From this blurb, list each company and where it's based: {t}",
    ], {"t": lambda r: (f"{r.choice(COMPANIES)} was founded in {r.randint(1950, 2020)} and is headquartered in {r.choice(CITIES)}; "
                        f"its rival {r.choice(COMPANIES)} started in {r.choice(CITIES)} in {r.randint(1950, 2020)}.")}, count=25),
]
