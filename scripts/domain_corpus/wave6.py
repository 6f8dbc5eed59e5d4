"""Sixth wave: the same generic question stems over each domain's own lexicon, so that the topic
word decides the domain, not the stem ("What is a closure?" is code, "What is a derivative?" math)."""

from __future__ import annotations

from engine import Family

CODE_TERMS = [
    "a closure", "a pointer", "a race condition", "an API", "a compiler", "a linked list", "a hash table", "a REST endpoint",
    "a Docker image", "a git branch", "a unit test", "a null reference", "an interface", "a lambda function", "a regex",
    "a memory leak", "a stack overflow", "garbage collection", "a foreign key", "a database index", "a web socket",
    "a cron job", "a container", "a virtual environment", "a package manager", "a linter", "a callback", "a promise",
    "a thread pool", "a deadlock", "an ORM", "a migration", "a load balancer", "a CDN", "a reverse proxy", "a webhook",
    "an environment variable", "a build pipeline", "a code review", "a pull request", "a merge conflict", "a segfault",
    "type casting", "string formatting", "exception handling", "dependency injection", "an iterator", "a generator",
    "a decorator", "a macro", "a template in C++", "the DOM", "CSS flexbox", "a React hook", "a SQL join",
    "a binary search", "a recursion limit", "Big O notation", "an enum", "a struct", "a trait", "a goroutine",
    "a mutex", "an async function", "a JSON schema", "a YAML file", "an HTTP status code", "a CORS error", "a cookie",
    "an OAuth token", "a shell script", "a pipe in bash", "a Makefile", "a Kubernetes pod", "a Helm chart", "a Lambda function",
    "a message queue", "a feature flag", "a stack trace", "a debugger breakpoint", "a profiler", "a code formatter",
]
MATH_TERMS = [
    "a derivative", "an integral", "a logarithm", "a prime number", "a matrix", "an eigenvalue", "a vector", "a polynomial",
    "a fraction", "a percentage", "a ratio", "a square root", "an exponent", "a factorial", "a permutation", "a combination",
    "a probability", "an expected value", "a standard deviation", "a median", "a variance", "a normal distribution",
    "a z-score", "a confidence interval", "a p-value", "a linear equation", "a quadratic equation", "a system of equations",
    "an inequality", "an absolute value", "a function's domain", "an inverse function", "a limit", "a series", "a sequence",
    "a geometric progression", "an arithmetic progression", "a triangle's area", "a circle's circumference", "pi",
    "the Pythagorean theorem", "sine and cosine", "a radian", "a tangent line", "a slope", "a y-intercept", "a parabola",
    "an asymptote", "a complex number", "a determinant", "a dot product", "a cross product", "a proof by induction",
    "a greatest common divisor", "a least common multiple", "modular arithmetic", "a prime factorisation", "a decimal",
    "scientific notation", "a unit conversion", "compound interest", "a weighted average", "a histogram", "a correlation",
    "a regression line", "a Venn diagram", "a set", "a graph in graph theory", "a mean value theorem", "a Taylor series",
]
CHAT_TERMS = [
    "black holes", "the Roman Empire", "octopuses", "the Eiffel Tower", "sourdough bread", "jazz", "the Olympics",
    "dinosaurs", "volcanoes", "the northern lights", "penguins", "chocolate", "coffee", "the moon", "honeybees",
    "the pyramids", "Shakespeare", "the Beatles", "tea ceremonies", "yoga", "meditation", "camping", "dogs", "cats",
    "houseplants", "Halloween", "Christmas markets", "the ocean", "rainbows", "thunderstorms", "sushi", "pizza",
    "football", "chess as a hobby", "knitting", "gardening", "road trips", "Paris", "Tokyo", "Iceland", "the Amazon rainforest",
    "elephants", "sharks", "whales", "the Titanic", "ancient Egypt", "Vikings", "samurai", "the Wild West", "space travel",
    "the Mona Lisa", "Van Gogh", "Harry Potter", "Star Wars", "Disney movies", "K-pop", "TikTok trends", "birthdays",
    "weddings", "holidays in Spain", "snow", "autumn", "sleep", "dreams", "breakfast", "ice cream", "my weekend",
]
REASONING_TERMS = [
    "a syllogism", "a logical fallacy", "circular reasoning", "a straw man argument", "the sunk cost fallacy",
    "confirmation bias", "a false dilemma", "correlation versus causation", "a necessary condition", "a sufficient condition",
    "a counterexample", "deductive reasoning", "inductive reasoning", "Occam's razor", "opportunity cost", "a trade-off",
    "a decision matrix", "expected utility", "a thought experiment", "a paradox", "the prisoner's dilemma", "game theory",
    "a logic puzzle", "a knights and knaves puzzle", "a river crossing puzzle", "a riddle", "a lateral thinking puzzle",
    "first-principles thinking", "second-order effects", "root cause analysis", "a hypothesis test in everyday life",
    "base rate neglect", "survivorship bias", "a slippery slope argument", "an ad hominem", "begging the question",
    "a valid argument", "a sound argument", "a premise", "a conclusion", "modus ponens", "modus tollens",
    "a Fermi estimate", "a pros and cons list", "a risk assessment", "a worst-case scenario", "a tie-breaker rule",
]
WRITING_FORMS = [
    "a sonnet", "a haiku", "a limerick", "a short story", "a fairy tale", "a cover letter", "a wedding speech", "a eulogy",
    "a product description", "a slogan", "a tagline", "a press release", "a blog post", "an essay", "an op-ed", "a newsletter",
    "a toast", "a thank-you card", "a birthday poem", "a love letter", "song lyrics", "a screenplay scene", "a monologue",
    "a bedtime story", "an Instagram caption", "a tweet", "a LinkedIn post", "a bio", "an apology letter", "a resignation letter",
    "a complaint letter", "a recommendation letter", "a book blurb", "a speech", "a headline", "an ad", "a jingle",
    "a riddle poem", "an acrostic", "a dialogue", "a diary entry", "a travel story", "a mystery opening", "a fable",
]
WRITING_TOPICS = ["my dog", "the sea", "our new café", "my best friend", "autumn", "a lost key", "my grandmother", "the city",
                  "our team", "a rainy day", "first love", "moving house", "the mountains", "a robot", "coffee", "summer"]
EXTRACT_FIELDS = [
    "the email addresses", "the phone numbers", "the dates", "the names", "the totals", "the order numbers", "the addresses",
    "the product names", "the prices", "the tracking numbers", "the company names", "the deadlines", "the URLs",
    "the hashtags", "the amounts", "the invoice numbers", "the postal codes", "the times", "the percentages", "the ids",
    "the error codes", "the SKUs", "the quantities", "the signatures", "the account numbers", "the cities", "the job titles",
]
EXTRACT_SOURCES = ["this email", "the text below", "this PDF text", "the following message", "these notes", "this receipt",
                   "this chat log", "the article", "this web page text", "the transcript", "this spreadsheet dump", "the form"]

CODE = [
    Family("code/terms", [
        "What is {t} in programming?", "Explain {t} to a beginner developer.", "How does {t} work?", "Why would my code need {t}?",
        "Can you show an example of {t}?", "I don't understand {t}. Help?", "Tell me about {t} in software.",
    ], {"t": CODE_TERMS}, count=90),
]
MATH = [
    Family("math/terms", [
        "What is {t}?", "Explain {t} with a worked example.", "How do I calculate {t}?", "Why does {t} work?",
        "Can you show me {t} step by step?", "I don't understand {t}. Help?", "How is {t} used in maths?",
    ], {"t": MATH_TERMS}, count=90),
]
CHAT = [
    Family("chat/terms", [
        "Tell me about {t}.", "What do you think of {t}?", "What's cool about {t}?", "Do you like {t}?",
        "I've been thinking about {t} lately.", "Any fun facts about {t}?", "Can we talk about {t}?",
    ], {"t": CHAT_TERMS}, count=90),
]
REASONING = [
    Family("reasoning/terms", [
        "Explain {t} with an example and how to avoid it.", "How do I use {t} to make a better decision?",
        "Give me a puzzle that involves {t} and walk through the solution.", "What is {t}, and why does it trip people up?",
        "Help me apply {t} to a choice I'm facing.", "Show me {t} in a real argument and reason about it.",
    ], {"t": REASONING_TERMS}, count=80),
]
WRITING = [
    Family("writing/forms", [
        "Help me write {f} about {t}.", "I need {f} about {t}.", "Write {f} about {t}.", "Can you draft {f} for {t}?",
        "Give me {f} on {t}.", "Compose {f} about {t}, please.",
    ], {"f": WRITING_FORMS, "t": WRITING_TOPICS}, count=90),
]
EXTRACTION = [
    Family("extraction/fields", [
        "Extract {f} from {s}.", "Pull out {f} in {s}.", "Find {f} in {s} and list them.", "Get me {f} from {s} as JSON.",
        "Can you grab {f} out of {s}?", "Which are {f} mentioned in {s}?",
    ], {"f": EXTRACT_FIELDS, "s": EXTRACT_SOURCES}, count=80),
]
