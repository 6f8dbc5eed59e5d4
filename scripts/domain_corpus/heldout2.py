"""A second held-out set, written after the training families were final and never used to tune them.

Every family here is held out: new phrasings, new sub-topics and new slot values. The numbers on it
are the honest check of how the shipped model generalises (see the README next to the corpus).
"""

from __future__ import annotations

from engine import Family

CODE = [
    Family("code/v2-migration", [
        "We're moving from {a} to {b}. What breaks first and how do I plan the migration of the codebase?",
        "Is it worth rewriting our {a} service in {b}? The code base is about {n} lines.",
        "Our {a} build takes {m} minutes. How can I cache dependencies and make CI faster?",
        "How do I keep API backwards compatible while renaming a field in {a}?",
    ], {"a": ["Python 2", "AngularJS", "jQuery", "Java 8", "webpack", "MongoDB", "Flask", "Vue 2"],
        "b": ["Python 3", "React", "vanilla JS", "Java 21", "Vite", "PostgreSQL", "FastAPI", "Vue 3"],
        "n": ["20k", "150k", "half a million"], "m": ["25", "40", "90"]}, count=30, held_out=True),
    Family("code/v2-review-habits", [
        "What should I look for when reviewing a pull request that touches {x}?",
        "How do I write a good commit message for a change to {x}?",
        "Our linter complains about {y}. Should I disable the rule or fix the code?",
        "How many unit tests is enough for {x}?",
    ], {"x": ["the payment module", "database migrations", "the auth middleware", "a recursive parser", "the caching layer"],
        "y": ["unused imports", "cyclomatic complexity", "line length", "any types", "shadowed variables"]},
        count=25, held_out=True),
    Family("code/v2-snippet-question", [
        "Why does this loop never end?\n{s}", "Which line leaks memory here?\n{s}", "Can this be written without recursion?\n{s}",
        "This returns the wrong value for empty input, why?\n{s}",
    ], {"s": ["i = 0\nwhile i < 10:\n    print(i)", "char *buf = malloc(256);\nbuf = realloc(buf, 512);\nreturn 0;",
              "def depth(node):\n    return 1 + max(depth(c) for c in node.children)",
              "function last(arr) { return arr[arr.length]; }", "let n = parseInt(input);\nwhile (n != 1) n = n % 2 ? 3 * n + 1 : n / 2;"]},
        count=20, held_out=True),
]

MATH = [
    Family("math/v2-everyday-numbers", [
        "If I save ${a} a month, how long until I have ${b}?", "My phone battery drops {p}% an hour. How long will {q}% last?",
        "How many {t}-minute episodes can I watch in {h} hours?", "A pizza of {d} cm diameter or two of {e} cm: which has more pizza?",
        "How much is {p} percent tax on a ${b} purchase?",
    ], {"a": ["50", "120", "275"], "b": ["1500", "3200", "800"], "p": ["7", "12", "15", "8"], "q": ["60", "85", "40"],
        "t": ["22", "45", "50"], "h": ["5", "8", "3"], "d": ["40", "36"], "e": ["28", "25"]}, count=30, held_out=True),
    Family("math/v2-exam-style", [
        "Find the equation of the tangent line to y = {f} at x = {x}.", "Determine whether the sequence a_n = {s} converges.",
        "Compute the area between y = x^2 and y = {k}x.", "How many integers between 1 and {n} are divisible by 3 or 5?",
        "Find the minimum value of x^2 + {k}x + {c}.",
    ], {"f": ["x^3 - 2x", "e^x", "sqrt(x)", "1/x"], "x": ["1", "2", "4"], "s": ["(n+1)/n", "(-1)^n / n", "n^2 / 2^n"],
        "k": ["2", "4", "6"], "n": ["100", "250", "1000"], "c": ["7", "-3", "10"]}, count=30, held_out=True),
    Family("math/v2-stats-intuition", [
        "I flipped a coin {n} times and got {h} heads. Is the coin biased? Compute the p-value.",
        "What sample size do I need for a margin of error of {m}% at 95% confidence?",
        "The average of {k} numbers is {a}. If one number is removed the average becomes {b}. What was removed?",
        "Is the median or the mean better for incomes, numerically, for the data 20, 22, 25, 30, {big}?",
    ], {"n": ["100", "50", "200"], "h": ["60", "32", "115"], "m": ["3", "5"], "k": ["5", "8", "10"], "a": ["12", "20"],
        "b": ["11", "18"], "big": ["400", "1000"]}, count=25, held_out=True),
]

REASONING = [
    Family("reasoning/v2-who-did-it", [
        "Exactly one of {a}, {b} and {c} ate the cake. {a} says '{b} did it'. {b} says 'I didn't'. {c} says 'I didn't'. "
        "Only one of them tells the truth. Who ate it?",
        "{a} always arrives before {b}, and {c} never arrives last. If {b} isn't first, what is the arrival order?",
        "If {a} is at the party then {b} isn't; {c} only goes if {b} goes. {c} is there. Who else is?",
    ], {"a": ["Ava", "Ben", "Cleo", "Dev"], "b": ["Eli", "Fay", "Gus"], "c": ["Hugo", "Ivy", "Jon"]}, count=25, held_out=True),
    Family("reasoning/v2-tradeoff-life", [
        "Is it smarter to {x} or to {y}, given that {z}? Walk me through it.",
        "My options are to {x} or to {y}. What would make one clearly better than the other?",
        "Think about second-order effects: what happens a year from now if I {x} instead of choosing to {y}?",
    ], {"x": ["take a gap year", "buy a used car", "join a startup", "move closer to work", "learn to code"],
        "y": ["go straight to university", "lease a new one", "join a big bank", "keep my cheap flat", "do an MBA"],
        "z": ["I have some savings", "my partner works remotely", "I hate uncertainty", "I'm 35"]}, count=30, held_out=True),
    Family("reasoning/v2-spot-the-error", [
        "A study found people who drink {d} live longer, so {d} makes you live longer. What's the catch?",
        "'Our ads work: sales rose the month we started them.' Which alternative explanations would you rule out first?",
        "If {n}% of lottery winners bought their ticket at a petrol station, should I buy mine there? Explain.",
        "A survey of our happiest customers says 95% would recommend us. What's wrong with concluding most customers would?",
    ], {"d": ["red wine", "coffee", "green tea"], "n": ["60", "70", "45"]}, count=20, held_out=True),
]

WRITING = [
    Family("writing/v2-personal", [
        "Write a letter to my future self to open in {n} years.", "Write a short note to leave in my {r}'s lunchbox.",
        "Help me put into words why I'm grateful for my {r}, for a card.", "Write a few lines for my {r}'s retirement scrapbook.",
        "Pen a heartfelt farewell message to my {r} who is moving abroad.",
    ], {"n": ["five", "ten", "twenty"], "r": ["daughter", "husband", "mentor", "best friend", "coach", "grandpa"]},
        count=30, held_out=True),
    Family("writing/v2-genre-pieces", [
        "Write a {g} about {t} in under {w} words.", "Draft the first chapter outline of a {g} set in {t}.",
        "Write the blurb for a {g} about {t}.",
    ], {"g": ["fable", "ghost story", "travelogue", "cosy mystery", "spy thriller", "prose poem"],
        "t": ["a floating city", "a village bakery", "an overnight train", "a deep-sea station", "a desert oasis"],
        "w": ["200", "300", "500"]}, count=30, held_out=True),
    Family("writing/v2-business-copy", [
        "Write the welcome email for people who just joined our {p} waitlist.", "Write FAQ answers for our {p}'s pricing page.",
        "Draft a short announcement that our {p} is shutting down, kind and clear.", "Write three push-notification texts for our {p}.",
    ], {"p": ["meal-kit app", "language-learning app", "co-working space", "bike-sharing service", "meditation app"]},
        count=25, held_out=True),
]

CHAT = [
    Family("chat/v2-banter", [
        "Bet you can't guess my favourite {x}.", "Rate my {y} idea out of ten: {z}.", "Okay be honest, am I weird for {w}?",
        "Guess what I had for breakfast!", "Quick poll: {x} or {x2}?",
    ], {"x": ["colour", "ice-cream flavour", "season", "dinosaur", "fruit"],
        "y": ["weekend", "birthday", "Halloween costume"], "z": ["a picnic in the rain", "going as a toaster", "a board game marathon"],
        "w": ["liking pineapple pizza", "naming my plants", "reading the last page first", "hating musicals"]},
        count=30, held_out=True),
    Family("chat/v2-curious", [
        "Do {a} really {b}?", "How do {a} {c}?", "Why don't {a} {d}?",
    ], {"a": ["penguins", "octopuses", "koalas", "owls", "bats", "sharks"],
        "b": ["sleep standing up", "have three hearts", "recognise faces"], "c": ["find their way home", "stay warm", "communicate"],
        "d": ["get dizzy", "get cold feet", "need to drink water"]}, count=30, held_out=True),
    Family("chat/v2-plans", [
        "Got any ideas for a {o} with {w}?", "What's a nice thing to do in {c} on a {d}?", "What should I bring to a {e}?",
    ], {"o": ["lazy Sunday", "cheap date", "rainy afternoon", "long weekend"], "w": ["my kids", "my girlfriend", "friends", "grandma"],
        "c": ["Amsterdam", "Kyoto", "Edinburgh", "Buenos Aires"], "d": ["Sunday morning", "rainy day", "cold evening"],
        "e": ["potluck", "housewarming", "baby shower", "barbecue"]}, count=25, held_out=True),
]

EXTRACTION = [
    Family("extraction/v2-forms", [
        "Read this application and give me the applicant's {f}: {t}", "Fill a spreadsheet row (columns: {f}) from this text: {t}",
        "Which fields are missing from this form, and what are the filled ones? {t}",
    ], {"f": ["name, date of birth and nationality", "address and phone", "employer and start date"],
        "t": ["Applicant: Nora Vidal, born 04/11/1991, Spanish. Address: Av. Diagonal 12, Barcelona. Employer: none given.",
              "Name: Kofi Mensah | DOB: 1987-02-19 | Phone: +233 20 555 0199 | Start: 1 Sept",
              "Surname BERG, first name Ida, nationality Swedish, phone —, employer Volvo since 2019."]},
        count=25, held_out=True),
    Family("extraction/v2-messy-text", [
        "Here's a pasted chat. Pull out every time and place people agreed on: {c}", "Which prices are mentioned, and for what? {c}",
        "Get me a list of the item names only: {c}", "Clean this up into rows of (item, quantity): {c}",
    ], {"c": ["ok so 7pm at Luigi's? / nah 7:30 / fine 7:30 Luigi's / bring 2 bottles of wine + 1 cake",
              "the blue lamp was 45 bucks, the rug like 120, and the chair 60 on sale",
              "need: 3x AA batteries, milk (2), one bag of rice, 6 eggs, dish soap",
              "meet Sat 10am at the north gate, then lunch 1pm at Café Sol, tickets 15 each"]}, count=20, held_out=True),
    Family("extraction/v2-documents", [
        "From this contract clause, extract the parties, the amount and the termination notice period: {d}",
        "Pull out the dosage and frequency for each drug: {m}", "List every section heading in this text: {s}",
    ], {"d": ["This Agreement between Kite Media Ltd ('Client') and Jo Park ('Contractor') sets a fee of GBP 4,000; "
              "either party may terminate with 30 days' written notice.",
              "Acme BV shall pay Lumo Oy EUR 12,500 per quarter; termination requires 60 days' notice."],
        "m": ["Amoxicillin 500 mg three times a day for 7 days; ibuprofen 400 mg as needed, max 3 per day.",
              "Vitamin D 1000 IU daily; metoprolol 25 mg twice daily."],
        "s": ["1. Introduction ... 2. Scope ... 2.1 Out of scope ... 3. Timeline ... 4. Budget",
              "Overview / Getting started / Configuration / Troubleshooting / FAQ"]}, count=20, held_out=True),
]

