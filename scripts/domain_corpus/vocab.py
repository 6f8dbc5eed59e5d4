"""Shared slot values and small text generators (names, places, dates, amounts, passages)."""

from __future__ import annotations

import random

from engine import Pool

FIRST = ("Maria", "James", "Aiko", "Carlos", "Fatima", "Liam", "Olga", "Chen", "Priya", "Tom", "Amara",
         "Lukas", "Sofia", "Mohammed", "Hannah", "Diego", "Yuki", "Noah", "Elena", "Kwame", "Ines", "Ravi",
         "Greta", "Samuel", "Leila", "Pierre", "Anna", "Mateo", "Zoe", "Ibrahim")
LAST = ("Garcia", "Smith", "Tanaka", "Okafor", "Müller", "Rossi", "Kowalski", "Nguyen", "Patel", "Johnson",
        "Dubois", "Silva", "Andersen", "Haddad", "Kim", "Novak", "Moreau", "Schmidt", "Costa", "Brown")
COMPANIES = ("Acme Logistics", "Northwind Traders", "Bluepeak Software", "Greenfield Farms", "Helios Energy",
             "Orbital Print Co.", "Riverside Dental", "Summit Outdoor Gear", "Copperleaf Bakery",
             "Vantage Analytics", "Lumen Lighting GmbH", "Harbor & Finch LLP", "Pixelworks Studio",
             "Stellar Freight", "Maple Street Books")
CITIES = ("Lisbon", "Toronto", "Nairobi", "Osaka", "Berlin", "Austin", "Lyon", "Melbourne", "Bogotá", "Seoul",
          "Krakow", "Dublin", "Mumbai", "Denver", "Porto", "Helsinki", "Cape Town", "Vancouver")
COUNTRIES = ("Portugal", "Canada", "Kenya", "Japan", "Germany", "the United States", "France", "Australia",
             "Colombia", "South Korea", "Poland", "Ireland", "India", "Finland", "South Africa")
STREETS = ("Baker Street", "Rua Augusta", "Elm Avenue", "Kastanienallee", "Rue de la Paix", "Queen St W",
           "Via Roma", "Calle Mayor", "Maple Drive", "Harbour Road")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
PRODUCTS = ("wireless earbuds", "a standing desk", "a ceramic pour-over coffee set", "hiking boots",
            "a smart thermostat", "a leather notebook", "an electric kettle", "a yoga mat", "a kids' bike",
            "noise-cancelling headphones", "a cast-iron skillet", "a solar power bank", "a linen duvet cover",
            "a mechanical keyboard", "a reusable water bottle", "a robot vacuum")


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def email_of(name: str, rng: random.Random) -> str:
    first, last = name.lower().split()[0], name.lower().split()[-1].replace("ü", "u")
    return f"{first}.{last}@{rng.choice(['example.com', 'mail.net', 'acme.io', 'corp.org'])}"


def phone(rng: random.Random) -> str:
    return rng.choice(["+1 512-555-{:04d}", "+44 20 7946 {:04d}", "+351 21 555 {:04d}", "(415) 555-{:04d}",
                       "+49 30 5550 {:04d}"]).format(rng.randrange(10000))


def date(rng: random.Random) -> str:
    d, m, y = rng.randint(1, 28), rng.randrange(12), rng.choice([2022, 2023, 2024, 2025])
    return rng.choice([f"{MONTHS[m]} {d}, {y}", f"{d} {MONTHS[m]} {y}", f"{y}-{m + 1:02d}-{d:02d}",
                       f"{m + 1:02d}/{d:02d}/{y}"])


def money(rng: random.Random) -> str:
    amount = rng.choice([rng.randint(5, 99) + rng.randrange(100) / 100, rng.randint(100, 9999) + 0.5 * rng.randrange(2)])
    return rng.choice(["${:,.2f}", "€{:,.2f}", "{:,.2f} USD", "£{:,.2f}"]).format(amount)


def address(rng: random.Random) -> str:
    return (f"{rng.randint(1, 240)} {rng.choice(STREETS)}, {rng.choice(CITIES)} "
            f"{rng.randint(10000, 99999)}, {rng.choice(COUNTRIES)}")


TOPICS = Pool("remote work", "climate change", "learning a second language", "urban gardening",
              "the history of jazz", "electric cars", "minimalism", "social media and teenagers",
              "space exploration", "the four-day work week", "coffee culture", "public libraries",
              "video games as art", "sleep and productivity", "small businesses after the pandemic",
              "ocean plastic", "street food", "artificial intelligence in schools", "marathon training",
              "board games", "solo travel", "volunteering", "the future of cities", "houseplants")
