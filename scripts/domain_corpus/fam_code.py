"""code: writing, debugging, explaining, reviewing and operating software."""

from __future__ import annotations

import random

from engine import Family, Pool

LANGS = Pool("Python", "JavaScript", "TypeScript", "Java", "C", "C++", "Go", "Rust", "C#", "Ruby", "PHP",
             "Kotlin", "Swift", "Scala", "Haskell", "Elixir", "Lua", "Dart", "R", "Julia")

TASKS = Pool(
    "reverse a string", "check if a string is a palindrome", "merge two sorted arrays",
    "remove duplicates from a list while keeping the order", "parse a CSV file into a list of records",
    "read a JSON config file with defaults", "count word frequencies in a text file", "flatten a nested list",
    "validate an email address", "compute the Levenshtein distance between two strings",
    "find the longest common prefix of a list of strings", "rotate a matrix by 90 degrees",
    "convert a Roman numeral to an integer", "group a list of objects by a key", "debounce a function",
    "retry an HTTP request with exponential backoff", "read a large file line by line without loading it all",
    "generate a random password", "serialize an object to JSON", "deep merge two dictionaries",
    "find the k most frequent elements in an array", "chunk a list into batches of n",
    "detect a cycle in a linked list", "implement a thread-safe counter", "download a file and show progress",
    "compare two version strings like 1.10.2 and 1.9", "convert a timestamp to a local date string",
    "walk a directory tree and list all .log files", "memoize a recursive function", "implement a min-heap",
    "send an email with an attachment", "parse command-line arguments", "resize an image to a thumbnail",
    "sort a list of dictionaries by two keys", "implement an LRU cache", "run tasks concurrently with a limit",
)

ERRORS = Pool(
    "TypeError: 'NoneType' object is not subscriptable", "IndexError: list index out of range",
    "Segmentation fault (core dumped)", "java.lang.NullPointerException", "TypeError: undefined is not a function",
    "error[E0499]: cannot borrow `x` as mutable more than once at a time",
    "ModuleNotFoundError: No module named 'requests'", "KeyError: 'user_id'",
    "Access to fetch has been blocked by CORS policy", "fatal error: concurrent map writes",
    "error: expected ';' before '}' token", "UnhandledPromiseRejectionWarning", "RecursionError: maximum recursion depth exceeded",
    "ConcurrentModificationException", "panic: runtime error: invalid memory address or nil pointer dereference",
    "SyntaxError: Unexpected token < in JSON at position 0", "ORA-00942: table or view does not exist",
    "django.db.utils.IntegrityError: UNIQUE constraint failed", "undefined reference to `main'",
    "OutOfMemoryError: Java heap space", "ValueError: too many values to unpack (expected 2)",
    "error TS2339: Property 'name' does not exist on type '{}'", "ImportError: cannot import name 'X' from partially initialized module",
    "npm ERR! code ERESOLVE unable to resolve dependency tree", "Permission denied (publickey)",
)

CONTEXTS = Pool("my Flask app", "the unit tests", "my React component", "a script that processes CSV files",
                "our CI pipeline", "the Spring Boot service", "a small CLI tool", "my Django view",
                "the Node server", "a Jupyter notebook", "the Android build", "a Go microservice",
                "the data pipeline", "my game loop", "a Lambda function", "the login page")

CONCEPTS = Pool(
    ("a process", "a thread"), ("async/await", "threads"), ("an abstract class", "an interface"),
    ("a shallow copy", "a deep copy"), ("pass by value", "pass by reference"), ("a list", "a tuple"),
    ("let", "var"), ("==", "==="), ("a mutex", "a semaphore"), ("REST", "GraphQL"),
    ("composition", "inheritance"), ("a stack", "a heap"), ("TCP", "UDP"), ("SQL", "NoSQL databases"),
    ("unit tests", "integration tests"), ("git merge", "git rebase"), ("a class method", "a static method"),
    ("an index", "a primary key"), ("Docker", "a virtual machine"), ("Promise.all", "Promise.allSettled"),
    ("a pointer", "a reference in C++"), ("checked", "unchecked exceptions"), ("goroutines", "OS threads"),
    ("monorepos", "polyrepos"), ("optimistic", "pessimistic locking"), ("HashMap", "TreeMap"),
)
SINGLE_CONCEPTS = Pool("closures", "generics", "dependency injection", "memoization", "the event loop",
                       "big-O notation", "recursion", "database normalization", "the borrow checker",
                       "virtual DOM", "garbage collection", "SOLID principles", "dynamic programming",
                       "middleware", "race conditions", "idempotent API endpoints", "JWT authentication",
                       "the GIL", "decorators", "coroutines", "monads", "CAP theorem", "OAuth 2.0 flows",
                       "tail call optimisation", "hash tables", "semantic versioning", "web sockets")

SNIPPETS = Pool(
    "def avg(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total / len(xs)",
    "for (var i = 0; i < items.length; i++) {\n  setTimeout(function() { console.log(items[i]); }, 100);\n}",
    "SELECT * FROM orders o, customers c WHERE o.customer_id = c.id AND c.country = 'PT'",
    "func sum(nums []int) int {\n\ts := 0\n\tfor i := 0; i <= len(nums); i++ {\n\t\ts += nums[i]\n\t}\n\treturn s\n}",
    "public String join(List<String> xs) {\n  String out = \"\";\n  for (String x : xs) out += x + \",\";\n  return out;\n}",
    "fn longest(a: &str, b: &str) -> &str {\n    if a.len() > b.len() { a } else { b }\n}",
    "const data = await fetch(url).then(r => r.json());\nsetState(data.items.map(i => i.name));",
    "int *p = malloc(10);\nstrcpy(p, \"hello world\");\nprintf(\"%s\", p);",
    "users = [u for u in users if u['active'] == True]\nfor u in users:\n    print(u['name'])",
    "class Cache:\n    store = {}\n    def get(self, k):\n        return self.store[k]",
    "if (x = 5) {\n    printf(\"five\");\n}",
    "df = pd.read_csv('sales.csv')\nfor i, row in df.iterrows():\n    df.loc[i, 'total'] = row.price * row.qty",
    "useEffect(() => {\n  const id = setInterval(tick, 1000);\n}, []);",
    "try:\n    do_work()\nexcept:\n    pass",
    "while True:\n    line = f.readline()\n    if line == '': break\n    lines.append(line.strip())",
    "String s = null;\nif (s.equals(\"ok\")) { run(); }",
    "let total = 0;\nprices.forEach(p => total += p);\nreturn total.toFixed(2);",
    "UPDATE accounts SET balance = balance - 100 WHERE id = 7;\nUPDATE accounts SET balance = balance + 100 WHERE id = 9;",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
    "#!/bin/bash\nfor f in $(ls *.txt); do\n  cat $f >> all.txt\ndone",
    "x = [[0] * 3] * 3\nx[0][0] = 1\nprint(x)",
    "async function load() {\n  items.forEach(async (i) => { await save(i); });\n  console.log('done');\n}",
)

FRAMEWORKS = Pool("pytest", "Jest", "JUnit 5", "Go's testing package", "RSpec", "Vitest", "unittest", "xUnit",
                  "Mocha and Chai", "Kotest", "PHPUnit", "Catch2")
TEST_TARGETS = Pool("this function", "a shopping cart class", "the login endpoint", "a date parsing helper",
                    "a rate limiter", "the CSV importer", "a password validator", "this React hook",
                    "a retry decorator", "a bank account class with deposit and withdraw")

SQL_TASKS = Pool(
    "returns the top 5 customers by total order value from orders(customer_id, amount)",
    "finds duplicate email addresses in a users table",
    "counts orders per month for the last year",
    "lists employees who earn more than their manager",
    "deletes rows older than 90 days from an events table",
    "joins products and categories and shows products with no category",
    "computes a running total of sales per day",
    "finds the second highest salary in each department",
    "pivots monthly revenue into one column per month",
    "gets the latest login per user from a logins table",
    "finds customers who ordered in 2023 but not in 2024",
    "calculates the median order value in PostgreSQL",
)

OPS_TASKS = Pool(
    "find all files larger than 100MB in a directory with bash", "write a Dockerfile for a Node.js app",
    "set up a GitHub Actions workflow that runs pytest on every push", "undo the last git commit but keep the changes",
    "restart a deployment with kubectl", "write a cron expression that runs every weekday at 9am",
    "set environment variables in a docker-compose file", "squash my last three commits",
    "configure nginx as a reverse proxy for a local app on port 3000", "free up disk space used by Docker images",
    "write a Makefile target that builds and tests the project", "tail the logs of a crashing pod",
    "set up a Python virtual environment and pin dependencies", "rename a git branch locally and on the remote",
    "write a systemd unit file for a background worker", "grep recursively for a string but skip node_modules",
    "write a Terraform resource for an S3 bucket with versioning", "resolve a merge conflict in package-lock.json",
    "schedule a job with Kubernetes CronJob", "create an SSH key and add it to GitHub",
)

REGEX = Pool("a valid IPv4 address", "dates in the format YYYY-MM-DD", "a US ZIP code with optional +4",
             "hex colour codes like #1a2b3c", "words that start with a capital letter",
             "a strong password (8+ chars, a digit, a symbol)", "URLs that start with http or https",
             "lines that end with a semicolon", "a time like 23:59", "UUIDs", "duplicate consecutive words",
             "markdown links and capture the text and the URL")

ALGOS = Pool("Dijkstra's shortest path", "a trie for autocomplete", "binary search on a rotated array",
             "quicksort", "a union-find structure", "topological sort", "a sliding window maximum",
             "breadth-first search on a grid", "a bloom filter", "merge sort for linked lists",
             "the knapsack problem with dynamic programming", "a consistent hashing ring", "an interval tree",
             "A* pathfinding", "reservoir sampling", "a ring buffer")

LIB_TASKS = Pool(
    ("group rows and sum a column", "pandas"), ("add retries to requests", "the requests library"),
    ("clean up a subscription in useEffect", "React"), ("write a data migration", "Django"),
    ("broadcast a vector over a matrix", "NumPy"), ("stream a large response", "FastAPI"),
    ("mock a module", "Jest"), ("paginate a query", "SQLAlchemy"), ("upload a file to S3", "boto3"),
    ("debounce input", "RxJS"), ("validate nested JSON", "pydantic"), ("handle form state", "React Hook Form"),
    ("cache a computed value", "Vue"), ("make a POST request with headers", "axios"),
    ("define a many-to-many relation", "Prisma"), ("run background jobs", "Celery"),
    ("read a parquet file", "Polars"), ("train a logistic regression", "scikit-learn"),
)

PROJECTS = Pool("a todo app", "an e-commerce backend", "a chat application", "a URL shortener",
                "a blog with comments", "a multiplayer game server", "an inventory system", "a booking service",
                "a file-sharing service", "a payment webhook handler", "a recipe API", "a parking-lot system")

TRACES = Pool(
    'Traceback (most recent call last):\n  File "app.py", line 42, in handler\n    user = db.get(uid)["name"]\nTypeError: \'NoneType\' object is not subscriptable',
    "Exception in thread \"main\" java.lang.ArrayIndexOutOfBoundsException: Index 5 out of bounds for length 5\n\tat Main.process(Main.java:17)",
    "thread 'main' panicked at 'called `Option::unwrap()` on a `None` value', src/main.rs:12:31",
    "Uncaught (in promise) TypeError: Cannot read properties of undefined (reading 'map')\n    at ProductList (ProductList.jsx:14)",
    "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:23 +0x1d\nexit status 2",
    "E0308: mismatched types: expected `i32`, found `&str`",
    "psycopg2.errors.UndefinedColumn: column \"created\" does not exist\nLINE 1: SELECT id, created FROM events",
    "System.InvalidOperationException: Sequence contains no elements\n   at System.Linq.Enumerable.First",
    "Error: listen EADDRINUSE: address already in use :::3000",
    "Fatal error: Uncaught Error: Call to a member function fetch() on bool in /var/www/index.php:8",
)

APPS = Pool("Express app", "Spring service", "Rails app", "Electron app", "Flutter app", "Celery worker",
            "ASP.NET API", "Next.js site", "Laravel project", "Kotlin backend")

# Spanish / French / German / mixed
TASKS_ES = Pool("invertir una cadena", "ordenar una lista de diccionarios por fecha", "leer un archivo CSV",
                "eliminar duplicados de una lista", "conectar a una base de datos PostgreSQL",
                "validar un correo electrónico", "calcular el factorial de un número", "hacer una petición HTTP",
                "contar las palabras de un archivo", "convertir un JSON en un objeto")
TASKS_FR = Pool("inverser une chaîne", "trier une liste d'objets par date", "lire un fichier CSV",
                "supprimer les doublons d'une liste", "se connecter à une base MySQL", "parser du JSON",
                "écrire un test unitaire", "faire une requête HTTP avec des en-têtes", "lire un fichier ligne par ligne")
TASKS_DE = Pool("einen String umkehren", "eine Liste nach Datum sortieren", "eine CSV-Datei einlesen",
                "Duplikate aus einer Liste entfernen", "eine REST-API aufrufen", "JSON parsen",
                "einen Unit-Test schreiben", "eine Datei zeilenweise lesen", "Threads synchronisieren")


def _n(rng: random.Random) -> str:
    return rng.choice(["10 thousand", "2 million", "500k", "50,000", "a billion", "300 million"])


FAMILIES = [
    Family("code/write-function", [
        "Write a {lang} function to {task}.",
        "How do I {task} in {lang}?",
        "Give me {lang} code to {task}.",
        "[Can you show|Show] me how to {task} in {lang}[ with an example|]?",
        "I need a {lang} snippet that can {task}.",
        "Implement a function in {lang} that will {task}.",
        "What's the idiomatic way to {task} in {lang}?",
        "{lang}: {task}[, please|]",
        "Write a small {lang} program to {task} and explain the code.",
    ], {"lang": LANGS, "task": TASKS}, count=80),
    Family("code/debug-error", [
        "I get `{error}` when I run {context}. What's wrong?",
        "Why am I getting {error}?",
        "{context} keeps failing with {error}. How do I fix it?",
        "How to fix \"{error}\" in {lang}?",
        "Getting this error: {error}\nAny idea what causes it?",
        "My {lang} code throws {error} [only in production|on the second run|randomly]. [Help!|What should I check?|]",
    ], {"error": ERRORS, "context": CONTEXTS, "lang": LANGS}, count=60),
    Family("code/explain-concept", [
        "What is the difference between {pair.0} and {pair.1}?",
        "Explain the difference between {pair.0} and {pair.1} in {lang}.",
        "When should I use {pair.0} instead of {pair.1}?",
        "{pair.0} vs {pair.1}: which one [and why|for a beginner|in practice]?",
        "Can you explain {c} like I'm a junior developer?",
        "What are {c} and why do they matter in {lang}?",
        "How does {c} work under the hood?",
        "Explain {c} with a short code example.",
    ], {"pair": CONCEPTS, "c": SINGLE_CONCEPTS, "lang": LANGS}, count=55),
    Family("code/review-snippet", [
        "Can you review this code and suggest improvements?\n```\n{snippet}\n```",
        "Refactor this to be more readable:\n{snippet}",
        "What's wrong with this code?\n\n{snippet}",
        "Is there a bug here?\n{snippet}",
        "Make this faster:\n```\n{snippet}\n```",
        "Add comments and type hints to this:\n{snippet}",
        "{snippet}\n\nwhy doesn't this work?",
    ], {"snippet": SNIPPETS}, count=60),
    Family("code/sql", [
        "Write a SQL query that {sql}.",
        "How do I write a query that {sql}?",
        "SQL question: I need a query that {sql}. I'm on [PostgreSQL|MySQL|SQLite|SQL Server].",
        "Help me with a [Postgres|MySQL] query which {sql}.",
    ], {"sql": SQL_TASKS}, count=35),
    Family("code/devops", [
        "How do I {ops}?",
        "What's the command to {ops}?",
        "Show me how to {ops}.",
        "I'm trying to {ops} but can't figure it out.",
    ], {"ops": OPS_TASKS}, count=45),
    Family("code/tests", [
        "Write unit tests for {target} using {fw}.",
        "How should I test {target} with {fw}?",
        "Generate {fw} test cases for {target}, including edge cases.",
    ], {"target": TEST_TARGETS, "fw": FRAMEWORKS}, count=25),
    Family("code/regex", [
        "Write a regex that matches {re}.",
        "What regular expression matches {re}?",
        "I need a regex for {re} in {lang}.",
    ], {"re": REGEX, "lang": LANGS}, count=20),
    Family("code/algorithms", [
        "Implement {algo} in {lang}.",
        "How does {algo} work, and can you code it in {lang}?",
        "What's the time complexity of {algo}?",
        "Write {algo} step by step in {lang} with comments.",
    ], {"algo": ALGOS, "lang": LANGS}, count=35),
    Family("code/library", [
        "How do I {lt.0} with {lt.1}?",
        "In {lt.1}, what's the best way to {lt.0}?",
        "{lt.1}: how to {lt.0}?",
    ], {"lt": LIB_TASKS}, count=30),
    Family("code/convert", [
        "Convert this code to {lang}:\n{snippet}",
        "Translate this snippet into idiomatic {lang}:\n{snippet}",
        "Port this to {lang} please\n\n{snippet}",
    ], {"snippet": SNIPPETS, "lang": LANGS}, count=20),
    Family("code/es", [
        "¿Cómo puedo {task} en {lang}?",
        "Escribe una función en {lang} para {task}.",
        "Necesito código en {lang} que permita {task}.",
    ], {"task": TASKS_ES, "lang": LANGS}, count=15, lang="es", wrap=False),
    Family("code/fr", [
        "Comment {task} en {lang} ?",
        "Écris une fonction {lang} pour {task}.",
    ], {"task": TASKS_FR, "lang": LANGS}, count=12, lang="fr", wrap=False),
    Family("code/de", [
        "Wie kann ich in {lang} {task}?",
        "Schreib mir eine {lang}-Funktion, um {task}.",
    ], {"task": TASKS_DE, "lang": LANGS}, count=12, lang="de", wrap=False),
    Family("code/mixed", [
        "Oye, my {lang} code da este error: {error}. ¿Qué hago?",
        "Bonjour, j'ai un bug dans {context}: {error}",
        "Hilfe, {context} wirft {error}, was mache ich falsch?",
    ], {"lang": LANGS, "error": ERRORS, "context": CONTEXTS}, count=12, lang="mixed", wrap=False),

    # ---- held out: templates and slot values never seen in training
    Family("code/stack-trace", [
        "My {app} crashes on startup with this:\n{trace}\nAny idea?",
        "{trace}\n\nwhat does this mean and how do I fix it",
        "Seeing this in the logs of our {app}:\n{trace}",
        "Can you help me read this stack trace?\n{trace}",
    ], {"app": APPS, "trace": TRACES}, count=30, held_out=True),
    Family("code/design", [
        "How should I structure {project} in {lang}? Folders, modules, layers?",
        "Design a REST API for {project}: endpoints, status codes and payloads.",
        "What database schema would you use for {project}?",
        "Sketch the classes for {project} in {lang}.",
    ], {"project": PROJECTS, "lang": LANGS}, count=30, held_out=True),
    Family("code/performance", [
        "My {lang} loop over {n} rows is really slow. How can I speed it up?",
        "How do I profile a {lang} program that uses too much memory?",
        "This endpoint takes 3 seconds; how do I find the bottleneck in {lang}?",
        "Is it faster to use a dict or a list for lookups of {n} items in {lang}?",
    ], {"lang": LANGS, "n": _n}, count=25, held_out=True),
    Family("code/one-liner", [
        "Shortest way to {task} in {lang}?",
        "one-liner to {task} in {lang}",
        "Is there a built-in in {lang} to {task}, or do I have to write it myself?",
        "Compile error when I try to {task} in {lang}, what am I missing?",
    ], {"lang": LANGS, "task": TASKS}, count=30, held_out=True),
    Family("code/es-held", [
        "¿Por qué mi programa en {lang} lanza {error}?",
        "¿Cuál es la forma más eficiente de {task} usando {lang}?",
    ], {"lang": LANGS, "error": ERRORS, "task": TASKS_ES}, count=8, held_out=True, lang="es", wrap=False),
    Family("code/fr-de-held", [
        "Pourquoi mon script {lang} plante avec {error} ?",
        "Warum bekomme ich in {lang} den Fehler {error}?",
    ], {"lang": LANGS, "error": ERRORS}, count=8, held_out=True, lang="mixed", wrap=False),
]

# ---- more training breadth: the everyday ways people ask about software
KEYWORDS = Pool(("yield", "Python"), ("static", "Java"), ("volatile", "C"), ("async", "JavaScript"), ("lambda", "Python"),
                ("const", "C++"), ("final", "Java"), ("this", "JavaScript"), ("self", "Python"), ("super()", "Python"),
                ("defer", "Go"), ("unsafe", "Rust"), ("virtual", "C++"), ("sealed", "Kotlin"), ("inline", "Kotlin"),
                ("goroutine", "Go"), ("trait", "Rust"), ("interface{}", "Go"), ("extern", "C"), ("typeof", "TypeScript"))
PACKAGES = Pool("numpy", "Node.js", "Docker", "PostgreSQL", "Rust", "the AWS CLI", "Homebrew", "pandas", "Java 21",
                "Redis", "TensorFlow", "Git", "VS Code extensions", "Ruby on Rails", "Android Studio", "Go", "Flutter")
OSES = Pool("Windows 11", "Ubuntu", "macOS", "a Raspberry Pi", "WSL", "Debian", "an M1 Mac", "Fedora")
SHEETS = Pool("sum a column only if another column says 'paid'", "look up a price from another sheet",
              "highlight duplicate values", "count unique names", "split first and last names into two columns",
              "delete empty rows with a macro", "pull data from another workbook", "get the weekday from a date",
              "send an email when a cell changes with Apps Script", "concatenate text from several cells",
              "find the last non-empty row", "round up to the nearest 5")
WEB = Pool("make a navbar stick to the top", "center a div", "make an image responsive", "add a dark mode toggle",
           "stop a form from reloading the page", "make a dropdown menu with only CSS", "lazy-load images",
           "build a modal dialog", "animate a button on hover", "fetch data when a page loads",
           "store a value in localStorage", "make a table scroll horizontally on mobile")
GAMEDEV = Pool(("move a character with the arrow keys", "Unity"), ("detect collisions", "Pygame"),
               ("make a jump feel less floaty", "Godot"), ("spawn enemies every few seconds", "Unity"),
               ("save the player's progress", "Unreal"), ("draw a sprite", "Phaser"), ("add a pause menu", "Godot"))
DS = Pool("plot a histogram with matplotlib", "fix a NaN loss in PyTorch", "split data into train and test sets",
          "one-hot encode a column", "merge two DataFrames on two keys", "read an Excel file into pandas",
          "save a trained model to disk", "normalize features before training", "run a groupby with multiple aggregations",
          "speed up a slow pandas apply", "load a CSV with a different delimiter", "compute a rolling average in pandas")
EDITOR = Pool("delete all lines containing a word in vim", "select every occurrence of a word in VS Code",
              "set up a debugger for Python in VS Code", "format all files with Prettier on save",
              "search and replace across a whole project in IntelliJ", "quit vim", "show hidden files in the terminal",
              "make a bash alias permanent")

FAMILIES += [
    Family("code/what-does-keyword", [
        "What does `{kw.0}` do in {kw.1}?", "When do I need {kw.0} in {kw.1}?", "Explain the {kw.0} keyword in {kw.1}.",
        "Why would I use {kw.0} in {kw.1} code?", "What is {kw.0} in {kw.1} programming?",
    ], {"kw": KEYWORDS}, count=30),
    Family("code/install", [
        "How do I install {pkg} on {os}?", "Installing {pkg} on {os} fails with a permission error, what should I do?",
        "What's the easiest way to set up {pkg} on {os}?", "pip/npm install of {pkg} hangs on {os}. Ideas?",
        "How do I upgrade {pkg} on {os} without breaking my projects?",
    ], {"pkg": PACKAGES, "os": OSES}, count=35),
    Family("code/spreadsheet", [
        "Excel formula to {s}?", "How do I {s} in Google Sheets?", "Write a VBA macro to {s}.",
        "Which spreadsheet function can {s}?", "Google Apps Script: {s}",
    ], {"s": SHEETS}, count=35),
    Family("code/web", [
        "How do I {w} with HTML and CSS?", "What's the JavaScript to {w}?", "In React, how can I {w}?",
        "Tailwind: {w}?", "My page should {w}, but it doesn't work. Here's my markup.",
    ], {"w": WEB}, count=40),
    Family("code/gamedev", [
        "How do I {g.0} in {g.1}?", "{g.1} script to {g.0}", "In {g.1}, what's the cleanest way to {g.0}?",
    ], {"g": GAMEDEV}, count=20),
    Family("code/data-science", [
        "How do I {d}?", "Python: {d}", "What's the code to {d}?", "I'm trying to {d} and getting an error.",
    ], {"d": DS}, count=35),
    Family("code/editor-tools", ["How do I {e}?", "Shortcut or command to {e}?", "{e} - how?"], {"e": EDITOR},
           count=20),
    Family("code/error-meaning", [
        "What does '{error}' mean?", "What causes {error}?", "Explain this error message: {error}",
        "Is {error} a bug in my code or in the library?",
    ], {"error": ERRORS}, count=35),
    Family("code/explain-snippet", [
        "Explain this code line by line:\n{snippet}", "What does this function do?\n{snippet}",
        "What will this print?\n{snippet}", "Walk me through what happens when this runs:\n```\n{snippet}\n```",
    ], {"snippet": SNIPPETS}, count=35),
]

# ---- third wave
SYSTEMS = Pool("a rate limiter", "a notification service", "a job queue", "a search autocomplete", "a leaderboard",
               "a feature-flag system", "an image upload pipeline", "a shopping cart", "a logging pipeline")
LOG_ERRORS = Pool("OOMKilled", "connection reset by peer", "502 Bad Gateway from nginx", "ECONNREFUSED 127.0.0.1:5432",
                  "java.net.SocketTimeoutException: Read timed out", "Killed: 9", "certificate verify failed",
                  "too many open files", "exit code 137", "CrashLoopBackOff")

FAMILIES += [
    Family("code/system-design", [
        "How would you implement {s} in a web backend?", "Which data structures would you use for {s}?",
        "What's a simple architecture for {s}, and which database fits?", "Walk me through building {s} with Redis.",
    ], {"s": SYSTEMS}, count=30),
    Family("code/ops-errors", [
        "My container dies with {e}. How do I debug it?", "Our service logs show {e}. Where do I start?",
        "Kubernetes pod status {e}, what does it mean?", "Getting {e} when the app connects to the database.",
    ], {"e": LOG_ERRORS}, count=30),
]
