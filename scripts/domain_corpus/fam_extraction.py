"""extraction: pull structured fields out of given text (invoices, emails, logs, articles, forms)."""

from __future__ import annotations

import random

from engine import Family, Pool
from vocab import CITIES, COMPANIES, COUNTRIES, PRODUCTS, address, date, email_of, money, person, phone


def _invoice(rng: random.Random) -> str:
    lines = [f"INVOICE #{rng.randint(1000, 99999)}", f"From: {rng.choice(COMPANIES)}",
             f"Bill to: {person(rng)}, {address(rng)}", f"Date: {date(rng)}   Due: {date(rng)}"]
    for _ in range(rng.randint(1, 4)):
        lines.append(f"{rng.randint(1, 12)} x {rng.choice(PRODUCTS)} @ {money(rng)}")
    lines.append(f"Total: {money(rng)} (VAT included)")
    return "\n".join(lines)


def _contact_text(rng: random.Random) -> str:
    a, b = person(rng), person(rng)
    return rng.choice([
        f"Hi all, please reach out to {a} ({email_of(a, rng)}) for billing and to {b} at {phone(rng)} for support.",
        f"Meeting notes: {a} from {rng.choice(COMPANIES)} joined; contact {email_of(a, rng)}. {b} will call back on {phone(rng)}.",
        f"{a}\nSenior Buyer, {rng.choice(COMPANIES)}\nTel. {phone(rng)}\n{email_of(a, rng)}\n{address(rng)}",
        f"Thanks {b}! Forwarding to {a} <{email_of(a, rng)}>, cc {email_of(b, rng)}.",
    ])


def _dated_text(rng: random.Random) -> str:
    return rng.choice([
        f"The contract starts on {date(rng)} and can be cancelled after {date(rng)}; the first review is on {date(rng)}.",
        f"We met {person(rng)} on {date(rng)} in {rng.choice(CITIES)} and agreed to ship by {date(rng)}.",
        f"Project timeline: kickoff {date(rng)}, beta {date(rng)}, launch {date(rng)}.",
        f"Your appointment with Dr. {person(rng).split()[1]} is confirmed for {date(rng)} at {rng.randint(8, 17)}:{rng.choice(['00', '15', '30', '45'])}.",
    ])


def _logs(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(2, 4)):
        lvl = rng.choice(["INFO", "WARN", "ERROR", "DEBUG"])
        msg = rng.choice(["user login ok uid=%d" % rng.randint(1, 999), "payment declined order=%d" % rng.randint(1000, 9999),
                          "disk usage 91% on /var", "timeout calling inventory-svc after 30s", "cache miss key=sess:%d" % rng.randint(1, 99),
                          "retrying job id=%d attempt=2" % rng.randint(100, 999)])
        out.append(f"2024-0{rng.randint(1, 9)}-{rng.randint(10, 28)}T{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}Z {lvl} {msg}")
    return "\n".join(out)


def _article(rng: random.Random) -> str:
    a, b = person(rng), person(rng)
    c1, c2 = rng.sample(CITIES, 2)
    return rng.choice([
        f"{a}, CEO of {rng.choice(COMPANIES)}, announced on {date(rng)} that the company will open an office in {c1}. "
        f"{b}, a spokesperson, said hiring starts in {c2}.",
        f"In {c1}, mayor {a} met with {b} of {rng.choice(COMPANIES)} to discuss a {money(rng)} investment in public transport.",
        f"Researchers led by {a} at the University of {c1} published a study with {b} on sleep and memory.",
    ])


def _email(rng: random.Random) -> str:
    n = person(rng)
    return rng.choice([
        f"Hello, my name is {n}. My order #{rng.randint(10000, 99999)} arrived damaged ({rng.choice(PRODUCTS)}). "
        f"I'd like a replacement. You can reach me at {phone(rng)}.",
        f"Hi, I was charged {money(rng)} twice on {date(rng)} for subscription {rng.choice(['Basic', 'Pro', 'Team'])}. "
        f"Account email: {email_of(n, rng)}. Please refund one charge. - {n}",
        f"Dear support, I can't log in since {date(rng)}. Username: {n.split()[0].lower()}{rng.randint(1, 99)}. Plan: Pro. Thanks, {n}",
    ])


def _cv(rng: random.Random) -> str:
    n = person(rng)
    return (f"{n} - {rng.choice(['Data Analyst', 'Backend Developer', 'Nurse', 'Product Manager'])}\n"
            f"Experience: {rng.randint(1, 12)} years at {rng.choice(COMPANIES)}, {rng.randint(1, 5)} years at {rng.choice(COMPANIES)}\n"
            f"Skills: {', '.join(rng.sample(['SQL', 'Python', 'Excel', 'Tableau', 'Java', 'Kubernetes', 'patient care', 'Scrum', 'Figma'], 4))}\n"
            f"Education: {rng.choice(['BSc', 'MSc', 'BA'])} {rng.choice(['Economics', 'Computer Science', 'Nursing', 'Design'])}, "
            f"University of {rng.choice(CITIES)}, {rng.randint(2005, 2022)}")


def _table_text(rng: random.Random) -> str:
    rows = [f"{rng.choice(PRODUCTS)} costs {money(rng)} and we have {rng.randint(0, 300)} in stock" for _ in range(3)]
    return "; ".join(rows) + "."


def _reviews(rng: random.Random) -> str:
    pool = ["Arrived fast, works great!", "Broke after two days, very disappointed.", "It's okay, nothing special.",
            "Customer service was amazing and refunded me quickly.", "Too expensive for what it is.",
            "Exactly as described, would buy again.", "The battery dies in an hour."]
    return "\n".join(f"{i + 1}. {r}" for i, r in enumerate(rng.sample(pool, rng.randint(3, 5))))


def _lab(rng: random.Random) -> str:
    return (f"Patient: {person(rng)}  DOB: {date(rng)}\nHemoglobin {rng.randint(110, 170) / 10} g/dL (13.5-17.5)\n"
            f"Glucose {rng.randint(70, 160)} mg/dL\nLDL {rng.randint(60, 200)} mg/dL\nTSH {rng.randint(5, 60) / 10} mIU/L")


def _quotes(rng: random.Random) -> str:
    a, b = person(rng), person(rng)
    return (f"\"We are not slowing down,\" said {a} on {date(rng)}. {b} disagreed: \"The numbers tell a different story.\" "
            f"Later {a} added that \"growth will return next year\".")


def _message_with_links(rng: random.Random) -> str:
    return rng.choice([
        "Check the docs at https://docs.example.com/start and the pricing at https://example.com/pricing, "
        "or mail sales@example.com. Old link: http://legacy.example.org/help",
        f"Join us on {date(rng)}: https://meet.example.com/abc-defg-hij (backup: https://zoom.example.com/j/{rng.randint(10 ** 8, 10 ** 9)})",
    ])


INVOICE_FIELDS = Pool("invoice number, date and total", "all line items with quantities and prices",
                      "the customer name and billing address", "the due date and the amount", "the vendor and the total",
                      "every monetary amount")
FORMATS = Pool("JSON", "a JSON object", "CSV", "a table", "a bulleted list", "YAML", "key: value pairs", "JSON with snake_case keys")
ENTITIES = Pool("people", "organisations", "locations", "dates", "company names", "person names and their roles",
                "monetary amounts", "cities")

FAMILIES = [
    Family("extraction/invoice", [
        "Extract the {f} from this invoice as {fmt}:\n\n{inv}",
        "From the invoice below, pull out {f}.\n{inv}",
        "{inv}\n\nGive me {f} in {fmt}.",
        "Parse this invoice into {fmt} with fields for {f}:\n{inv}",
    ], {"f": INVOICE_FIELDS, "fmt": FORMATS, "inv": _invoice}, count=65),
    Family("extraction/contacts", [
        "Pull out the names, email addresses and phone numbers from this text:\n{t}",
        "Extract all contact details from the following as {fmt}:\n{t}",
        "List every email address in this message: {t}",
        "Get the phone numbers out of this: {t}",
        "Which people are mentioned here, and how can each be reached?\n{t}",
    ], {"t": _contact_text, "fmt": FORMATS}, count=55),
    Family("extraction/dates", [
        "List all the dates mentioned in this text: {t}",
        "Extract every date and what happens on it, as {fmt}: {t}",
        "Find the deadlines in this paragraph and return them in ISO format.\n{t}",
        "What dates appear in the following? {t}",
    ], {"t": _dated_text, "fmt": FORMATS}, count=50),
    Family("extraction/logs", [
        "Parse these log lines into timestamp, level and message:\n{l}",
        "Extract only the ERROR entries from these logs as {fmt}:\n{l}",
        "Turn these logs into structured {fmt} records:\n{l}",
        "{l}\n\nExtract the ids and levels from each line.",
    ], {"l": _logs, "fmt": FORMATS}, count=50),
    Family("extraction/entities", [
        "Extract all the {e} mentioned in this article: {a}",
        "Named entity extraction: list the {e} in the text below.\n{a}",
        "Identify the {e} in this passage and return {fmt}: {a}",
        "From this news snippet, extract {e}: {a}",
    ], {"e": ENTITIES, "a": _article, "fmt": FORMATS}, count=55),
    Family("extraction/support-ticket", [
        "Extract the customer name, order number and issue type from this email as {fmt}:\n{m}",
        "Fill in these fields from the message: name, account, problem, requested action.\n\n{m}",
        "Pull the key fields (order id, status, amount) out of this support ticket: {m}",
    ], {"m": _email, "fmt": FORMATS}, count=45),
    Family("extraction/cv", [
        "Extract the skills, years of experience and education from this CV as {fmt}:\n{cv}",
        "Parse this resume into structured fields:\n{cv}",
        "From this profile, list the employers and the total years of experience.\n{cv}",
    ], {"cv": _cv, "fmt": FORMATS}, count=35),
    Family("extraction/to-table", [
        "Turn this into a CSV with columns product, price, stock: {t}",
        "Convert the following text into {fmt} with one row per product: {t}",
        "Extract product names and prices from: {t}",
    ], {"t": _table_text, "fmt": FORMATS}, count=35),
    Family("extraction/address", [
        "Parse this address into street, city, postal code and country: {a}",
        "Split this address into its components as {fmt}: {a}",
        "What is the postal code and the city in this address? {a}",
    ], {"a": address, "fmt": FORMATS}, count=30),
    Family("extraction/es", [
        "Extrae los nombres y correos electrónicos de este texto: {t}",
        "Saca las fechas y los importes de esta factura en formato JSON:\n{inv}",
    ], {"t": _contact_text, "inv": _invoice}, count=14, lang="es", wrap=False),
    Family("extraction/fr", [
        "Extrais les dates et les montants de cette facture en JSON :\n{inv}",
        "Liste toutes les adresses e-mail présentes dans ce message : {t}",
    ], {"t": _contact_text, "inv": _invoice}, count=12, lang="fr", wrap=False),
    Family("extraction/de", [
        "Extrahiere Rechnungsnummer, Datum und Gesamtbetrag aus dieser Rechnung:\n{inv}",
        "Zieh alle Telefonnummern aus diesem Text heraus: {t}",
    ], {"t": _contact_text, "inv": _invoice}, count=12, lang="de", wrap=False),
    Family("extraction/mixed", [
        "Extrae the dates from this, por favor: {t}", "Peux-tu extract the emails from this text? {c}",
    ], {"t": _dated_text, "c": _contact_text}, count=8, lang="mixed", wrap=False),

    # ---- held out
    Family("extraction/reviews-labels", [
        "Label each review as positive, negative or neutral and return JSON:\n{r}",
        "For each of these reviews, extract the product issue mentioned (if any):\n{r}",
        "Tag these reviews with sentiment and a one-word topic, as a table:\n{r}",
    ], {"r": _reviews}, count=30, held_out=True),
    Family("extraction/lab-report", [
        "What are the glucose and LDL values in this lab report? Return them as key-value pairs.\n{l}",
        "Extract every test name, value and unit from this report:\n{l}",
        "Which values in this report are outside the reference range? List test and value.\n{l}",
    ], {"l": _lab}, count=30, held_out=True),
    Family("extraction/quotes", [
        "Find every direct quote in this text and who said it:\n{q}",
        "Extract speaker and quotation pairs as JSON: {q}",
        "Who said what? Pull the quotes out of this: {q}",
    ], {"q": _quotes}, count=30, held_out=True),
    Family("extraction/which-in-text", [
        "Which URLs appear in this message? {m}",
        "Give me only the links from this text, one per line: {m}",
        "Scrape the email addresses and URLs out of this: {m}",
        "I need the order number and the refund amount from this email, nothing else:\n{e}",
    ], {"m": _message_with_links, "e": _email}, count=30, held_out=True),
    Family("extraction/held-lang", [
        "Extraia o nome, o e-mail e o telefone deste texto: {t}",
        "Estrai le date e gli importi da questa fattura:\n{inv}",
        "Extrae el número de pedido y el problema de este correo: {m}",
    ], {"t": _contact_text, "inv": _invoice, "m": _email}, count=12, held_out=True, lang="mixed", wrap=False),
]

# ---- more training breadth
def _kv(rng: random.Random) -> str:
    n = person(rng)
    return rng.choice([f"name {n}, age {rng.randint(18, 80)}, city {rng.choice(CITIES)}",
                       f"{n}; {email_of(n, rng)}; {phone(rng)}",
                       f"product: {rng.choice(PRODUCTS)} | price: {money(rng)} | qty: {rng.randint(1, 9)}",
                       f"{n} ({rng.randint(20, 60)}) works at {rng.choice(COMPANIES)} in {rng.choice(CITIES)}"])


def _tweet(rng: random.Random) -> str:
    tags = rng.sample(["#travel", "#foodie", "#sunset", "#coding", "#marathon", "#bookclub", "#tbt", "#startup"], 3)
    users = rng.sample(["@ana_k", "@devmike", "@cityzoo", "@pizza_place", "@lisbonlove"], 2)
    return f"Great time with {users[0]} and {users[1]} today {' '.join(tags)} {rng.choice(['!!', ':)', ''])}"


def _transactions(rng: random.Random) -> str:
    shops = ["UBER TRIP", "GROCER MART", "NETFLIX", "SHELL FUEL", "CAFE LUNA", "AMAZON MKTP", "CITY PARKING", "PHARMACY"]
    return "\n".join(f"{date(rng)}  {rng.choice(shops)}  {money(rng)}" for _ in range(rng.randint(3, 5)))


def _schedule_text(rng: random.Random) -> str:
    return (f"Team sync Monday 10:00 with {person(rng)}; dentist Tuesday 15:30; "
            f"flight to {rng.choice(CITIES)} Thursday 07:45; dinner with {person(rng)} Friday 20:00.")


FAMILIES += [
    Family("extraction/to-json", [
        "Turn this into JSON: {kv}", "Convert to a JSON object: {kv}", "Make this a JSON record with sensible keys: {kv}",
        "Give me this as key: value pairs: {kv}",
    ], {"kv": _kv}, count=35),
    Family("extraction/social", [
        "List the hashtags in this post: {t}", "Extract the @mentions from: {t}", "Which users are tagged here? {t}",
        "Pull out hashtags and mentions separately: {t}",
    ], {"t": _tweet}, count=25),
    Family("extraction/single-field", [
        "From this text, what is the total? {inv}", "What's the invoice number in this?\n{inv}",
        "Just give me the phone number from this: {c}", "What is the due date here?\n{inv}",
        "Find the email address in this text: {c}",
    ], {"inv": _invoice, "c": _contact_text}, count=35),
    Family("extraction/transactions", [
        "Categorise these transactions into food, transport, subscriptions or other, as CSV:\n{t}",
        "Extract the merchant and amount from each line:\n{t}", "Sum the amounts per merchant from these lines:\n{t}",
        "Which of these transactions are over 50? List date and amount.\n{t}",
    ], {"t": _transactions}, count=30),
    Family("extraction/schedule", [
        "Extract each event with its day and time from: {s}", "Turn this into a calendar table (event, day, time): {s}",
        "What time is the flight in this? {s}",
    ], {"s": _schedule_text}, count=20),
]

# ---- third wave
def _feedback(rng: random.Random) -> str:
    pool = ["The app keeps logging me out.", "Love the new design!", "Delivery took three weeks.", "Price is fair.",
            "Support never answered my email.", "Best purchase this year.", "The size chart is wrong."]
    return " | ".join(rng.sample(pool, 4))


def _expenses(rng: random.Random) -> str:
    items = ["taxi 23.50", "hotel 189.00", "lunch 14.20", "train 56.00", "printer ink 31.99", "coffee 3.80", "parking 12.00"]
    return ", ".join(rng.sample(items, 4))


def _notes(rng: random.Random) -> str:
    a, b = person(rng), person(rng)
    return (f"{a} will prepare the slides by {date(rng)}. {b} checks the budget. Decision: move launch to {date(rng)}. "
            f"Open question: pricing for {rng.choice(COUNTRIES)}.")


FAMILIES += [
    Family("extraction/feedback", [
        "Group these comments by topic (app, delivery, price, support) and return a table: {f}",
        "Which of these comments are complaints? Return them as a list: {f}",
        "Extract the product problems mentioned in this feedback: {f}",
    ], {"f": _feedback}, count=25),
    Family("extraction/expenses", [
        "Put these expenses into a table with item and amount: {e}", "Extract the amounts and add them up: {e}",
        "Classify each expense as travel, food or office and output CSV: {e}",
    ], {"e": _expenses}, count=20),
    Family("extraction/notes", [
        "Extract the action items, owners and deadlines from these notes: {n}", "List the decisions and open questions in: {n}",
        "From the following notes, who does what by when? {n}",
    ], {"n": _notes}, count=25),
]
