"""writing: stories, poems, emails, marketing copy, editing, essays, speeches, posts."""

from __future__ import annotations

import random

from engine import Family, Pool
from vocab import PRODUCTS, TOPICS

CHARACTERS = Pool("a lighthouse keeper", "a retired astronaut", "a shy baker", "a time-travelling librarian",
                  "a robot that wants to paint", "two estranged sisters", "a street musician", "a detective with amnesia",
                  "a dragon afraid of fire", "a girl who can talk to plants", "an old fisherman", "a ghost in a hotel",
                  "a night-shift nurse", "a chess prodigy", "a stray cat", "the last tree on Mars")
EVENTS = Pool("finds a message in a bottle", "wakes up in the wrong century", "inherits a mysterious key",
              "loses their voice before a big concert", "discovers a hidden door", "meets their future self",
              "has to deliver a letter across a war zone", "wins a competition by accident",
              "gets stuck in an elevator with a stranger", "receives a phone call from the past")
GENRES = Pool("", "", "funny", "sci-fi", "bedtime", "horror", "mystery", "heart-warming", "noir", "fairy-tale",
              "dystopian", "romantic")
POEM_FORMS = Pool("haiku", "sonnet", "limerick", "short poem", "free-verse poem", "villanelle", "rhyming poem",
                  "ode", "acrostic poem", "ballad")
POEM_TOPICS = Pool("autumn leaves", "the sea at night", "my grandmother's kitchen", "city rain", "a broken phone",
                   "first snow", "the moon", "Monday mornings", "an old dog", "coffee", "leaving home", "the desert",
                   "friendship", "a train journey", "spring cleaning")
RECIPIENTS = Pool(("my landlord", "a leaking roof"), ("a client", "a delayed delivery"), ("my manager", "asking for a raise"),
                  ("a professor", "an extension on my essay"), ("the team", "the new holiday policy"),
                  ("a supplier", "a wrong invoice"), ("a colleague", "declining a meeting"),
                  ("customers", "a price increase"), ("a recruiter", "following up after an interview"),
                  ("my neighbour", "noise late at night"), ("a hotel", "a refund for a cancelled booking"),
                  ("new hires", "their first week"), ("investors", "quarterly results"))
TONES = Pool("polite", "friendly", "formal", "firm but polite", "apologetic", "warm", "short", "professional",
             "persuasive", "enthusiastic")
PARAGRAPHS = Pool(
    "Our company have been growing very fast and we are looking for people who is passionate about they're work and want to make a difference in the world of logistic.",
    "The meeting was long. Many things were discussed. Some decisions were made. People were tired at the end. We will meet again next week to discuss more things.",
    "I am writing to inform you that due to unforeseen circumstances that were beyond our control the event that was scheduled for Saturday has been postponed to a later date which will be announced soon.",
    "hey so basically the product is really good and it does a lot of stuff like tracking your sleep and steps and it also has a nice screen i think people will like it",
    "In conclusion, it can be said that social media has both positive and negative effects, and that it is important to use it in a way that is good rather than bad for you.",
    "The new park opened last week. It has a playground, a pond, and lots of trees. Families from the whole neighbourhood came to see it and everyone seemed happy about it.",
    "Thank you for you're application. Unfortunately we has decided to move forward with other candidates at this time but we will keep your resume on file.",
    "Climate change is a big problem. It affects everyone. We need to do something about it now before it is too late for future generations.",
)
JOBS = Pool("junior designer", "data analyst", "nurse", "marketing manager", "software engineer", "barista",
            "project coordinator", "teacher", "sales associate", "UX researcher", "accountant", "copywriter")
OCCASIONS = Pool(("wedding toast", "my sister"), ("retirement speech", "a colleague of 30 years"),
                 ("eulogy", "my grandfather"), ("birthday message", "my best friend"),
                 ("graduation speech", "my class"), ("farewell speech", "my team"),
                 ("thank-you note", "my child's teacher"), ("best man speech", "my brother"))
PLATFORMS = Pool("LinkedIn post", "tweet", "Instagram caption", "Facebook post", "newsletter intro", "TikTok script",
                 "Reddit post", "press release")
BUSINESSES = Pool("a coffee shop", "a dog-walking service", "a vegan bakery", "a bike repair shop", "a yoga studio",
                  "a language school", "an accounting firm", "a food truck", "a bookshop café", "a cleaning company",
                  "a craft brewery", "a kids' coding club", "a florist", "a plumbing business", "a tea brand")

TEXT_TO_EDIT_ES = Pool("Estimado cliente, le escribimos para informarle de que su pedido ha sido enviado.",
                       "El proyecto fue un éxito gracias a todo el equipo.")


def _words(rng: random.Random) -> str:
    return str(rng.choice([50, 100, 150, 200, 300, 500, 800, 1000]))


FAMILIES = [
    Family("writing/story", [
        "Write a {g} short story about {ch} who {ev}.",
        "Tell me a {g} story about {ch} who {ev}.",
        "Can you write a {w}-word story where {ch} {ev}?",
        "Write the opening paragraph of a {g} novel about {ch}.",
        "Write flash fiction (under {w} words) about {ch}.",
        "I need a {g} story for my kids about {ch}.",
    ], {"ch": CHARACTERS, "ev": EVENTS, "g": GENRES, "w": _words}, count=70),
    Family("writing/poem", [
        "Write a {form} about {t}.", "Compose a {form} about {t}.", "Can you write me a {form} on {t}?",
        "A {form} about {t}, please.", "Write a {form} about {t} in the style of Emily Dickinson.",
        "Give me a {form} about {t} that rhymes.",
    ], {"form": POEM_FORMS, "t": POEM_TOPICS}, count=55),
    Family("writing/email", [
        "Draft a {tone} email to {r.0} about {r.1}.",
        "Write an email to {r.0} regarding {r.1}. Keep it {tone}.",
        "Help me write a {tone} message to {r.0} about {r.1}.",
        "Can you write a letter to {r.0} about {r.1}?",
        "Compose a {tone} reply to {r.0} about {r.1}.",
    ], {"tone": TONES, "r": RECIPIENTS}, count=65),
    Family("writing/marketing", [
        "Write a product description for {p}.",
        "Write ad copy for {p} aimed at students.",
        "Give me a short tagline for {p}.",
        "Write a landing page headline and subheading for {biz}.",
        "Write an Instagram caption to promote {p}.",
        "Compose a catchy product blurb for {p}, max 60 words.",
        "Write marketing copy for {biz}'s grand opening.",
    ], {"p": PRODUCTS, "biz": BUSINESSES}, count=55),
    Family("writing/edit", [
        "Proofread this paragraph: {para}",
        "Make this more formal:\n{para}",
        "Improve the style of this paragraph and make it more concise:\n\n{para}",
        "Rewrite this so it sounds friendlier: {para}",
        "Fix the grammar in this: {para}",
        "Can you shorten this to one sentence? {para}",
        "Rephrase this paragraph for a general audience:\n{para}",
        "Summarize this in a more engaging way: {para}",
    ], {"para": PARAGRAPHS}, count=60),
    Family("writing/essay", [
        "Write a {w}-word blog post about {t}.", "Write an essay outline on {t}.",
        "Write a persuasive essay arguing for {t}.", "Write an introduction for an article about {t}.",
        "Draft an op-ed about {t}.", "Write a short opinion column on {t} for a local paper.",
    ], {"w": _words, "t": TOPICS}, count=50),
    Family("writing/speech", [
        "Write a {o.0} for {o.1}.", "Help me write a {o.0} for {o.1}, about two minutes long.",
        "I have to give a {o.0} for {o.1}. Can you draft it?", "Write a funny but touching {o.0} for {o.1}.",
    ], {"o": OCCASIONS}, count=35),
    Family("writing/career", [
        "Write a cover letter for a {job} position.", "Improve this resume bullet for a {job} role: 'did reports'.",
        "Write a LinkedIn summary for a {job} with five years of experience.",
        "Draft a short bio for a {job} for our company website.",
    ], {"job": JOBS}, count=30),
    Family("writing/social", [
        "Write a {pl} announcing {news}.", "Draft a {pl} about {news}.", "Turn this into a {pl}: {news}.",
    ], {"pl": PLATFORMS, "news": ["our new office in Lisbon", "hitting 10,000 customers", "my new job",
                                   "a charity run this weekend", "the launch of our podcast",
                                   "our summer sale", "finishing my first marathon"]}, count=30),
    Family("writing/es", [
        "Escribe un cuento corto sobre {ch}.", "Escribe un poema sobre el mar.",
        "Redacta un correo formal para pedir un día libre.", "Mejora el estilo de este texto: {t}",
    ], {"ch": ["un faro abandonado", "un gato viajero", "una abuela inventora", "un niño que no sabía reír"],
        "t": TEXT_TO_EDIT_ES}, count=14, lang="es", wrap=False),
    Family("writing/fr", [
        "Écris un poème sur {t}.", "Rédige un e-mail poli pour décliner une invitation.",
        "Écris une courte histoire sur {t}.", "Corrige et améliore ce paragraphe : « je suis aller au marché hier »",
    ], {"t": ["l'automne", "la mer", "un vieux phare", "Paris sous la pluie", "un chat curieux"]},
        count=12, lang="fr", wrap=False),
    Family("writing/de", [
        "Schreib ein Gedicht über {t}.", "Formuliere eine höfliche E-Mail an meinen Vermieter wegen der Heizung.",
        "Schreib eine kurze Geschichte über {t}.", "Verbessere den Stil dieses Absatzes: „Wir haben das gemacht und dann war es gut.“",
    ], {"t": ["den Herbst", "einen Leuchtturm", "eine Zugfahrt", "meine Katze", "den ersten Schnee"]},
        count=12, lang="de", wrap=False),
    Family("writing/mixed", [
        "Write a short poema de amor for my girlfriend, en español e inglés",
        "Écris-moi a LinkedIn post about my new job, in English please",
        "Kannst du mir eine cover letter für eine {job} Stelle schreiben?",
    ], {"job": JOBS}, count=8, lang="mixed", wrap=False),

    # ---- held out
    Family("writing/naming-slogan", [
        "Come up with a catchy slogan for {biz}.", "Give me {n} name ideas for {biz}.",
        "Brainstorm a memorable motto for {biz}.", "What would be a good name for {biz}?",
        "Suggest a punchy one-liner for {biz}'s storefront sign.", "Write a jingle for {biz}.",
    ], {"biz": BUSINESSES, "n": lambda r: str(r.choice([5, 10, 15, 20]))}, count=45, held_out=True),
    Family("writing/lyrics", [
        "Write song lyrics about {t}.", "Write a rap verse about {t}.", "Write a lullaby about {t}.",
        "Write a chorus for a pop song about {t}.", "Write a country song about {t}.",
    ], {"t": POEM_TOPICS}, count=30, held_out=True),
    Family("writing/dialogue", [
        "Write a dialogue between {ch} and {ch2} arguing about {t}.",
        "Write a short screenplay scene where {ch} meets {ch2}.",
        "Write a comedy sketch about {ch} trying to explain {t}.",
        "Write a monologue for {ch} about {t}.",
    ], {"ch": CHARACTERS, "t": TOPICS}, count=35, held_out=True),
    Family("writing/translate-polish", [
        "Translate this into natural-sounding French and keep the tone: 'We can't wait to see you at the party!'",
        "Translate my wedding invitation into Spanish, keeping it elegant.",
        "Make this English text sound native: '{para}'",
        "Rewrite this in the voice of a pirate: {para}",
        "Turn this paragraph into a bulleted newsletter blurb: {para}",
    ], {"para": PARAGRAPHS}, count=30, held_out=True),
    Family("writing/held-lang", [
        "Escreve um poema curto sobre saudade.", "Scrivi una breve storia su un gatto che viaggia in treno.",
        "Rédige une lettre de motivation pour un poste de {job}.", "Schreib mir einen Werbetext für {p}.",
        "Escribe un eslogan para una panadería artesanal.",
    ], {"job": JOBS, "p": PRODUCTS}, count=12, held_out=True, lang="mixed", wrap=False),
]

# ---- more training breadth
TITLES_FOR = Pool("my essay about social media", "a blog post on budget travel", "my podcast about history",
                  "a talk on burnout", "a YouTube video about home workouts", "my novel about a lost city",
                  "an article about urban farming", "my thesis on renewable energy", "a newsletter about parenting")
REVIEWED = Pool("a Thai restaurant I loved", "a hotel with a great view but rude staff", "a pair of running shoes",
                "a book that changed my mind", "a concert last night", "a cooking class", "my dentist")
TEXTS_TO = Pool(("my friend", "apologising for missing her party"), ("my boss", "saying I'm sick today"),
                ("my partner", "for our anniversary"), ("a group chat", "inviting everyone to a barbecue"),
                ("my landlord", "asking to paint the walls"), ("a coworker", "congratulating them on the promotion"))
SCENES = Pool("a sunset over the harbour", "a busy night market", "an abandoned amusement park", "the first day of spring",
              "a thunderstorm in the mountains", "a quiet library at closing time", "a crowded subway at rush hour")
STYLES = Pool("Shakespeare", "a sports commentator", "a noir detective", "a fairy tale", "a news anchor", "Dr. Seuss",
              "a medieval herald", "a cheerful kindergarten teacher")

FAMILIES += [
    Family("writing/titles", [
        "Suggest a title for {t}.", "Give me five headline options for {t}.", "What should I call {t}?",
        "Write a catchy title and subtitle for {t}.",
    ], {"t": TITLES_FOR}, count=25),
    Family("writing/review", [
        "Write a review of {r}.", "Help me write an honest review of {r}.", "Write a short, warm review about {r}.",
    ], {"r": REVIEWED}, count=18),
    Family("writing/text-message", [
        "Write a text to {m.0} {m.1}.", "Help me word a message to {m.0} {m.1}.", "How should I phrase a text to {m.0} {m.1}?",
    ], {"m": TEXTS_TO}, count=18),
    Family("writing/describe", [
        "Describe {s} in vivid language.", "Write a descriptive paragraph about {s}.", "Paint a picture in words of {s}.",
    ], {"s": SCENES}, count=18),
    Family("writing/style-rewrite", [
        "Rewrite this in the style of {st}: {para}", "Make this sound like {st}: {para}",
        "Retell the story of Little Red Riding Hood in the style of {st}.",
    ], {"st": STYLES, "para": PARAGRAPHS}, count=30),
    Family("writing/help-me-write", [
        "Help me write {x}.", "Can you write {x} for me?", "I need {x}. Can you draft one?", "Give me {x}.",
        "How do I write {x}? Show me an example.",
    ], {"x": Pool("a good opening line for my speech", "a caption for my vacation photos", "a short bio for Instagram",
                  "a toast for a retirement party", "a poem for a sympathy card", "a thank-you note to a mentor",
                  "a welcome message for new customers", "an intro for my podcast", "a love letter",
                  "a paragraph about my summer", "a motivational message for my team", "an engaging first sentence")},
        count=30),
]

# ---- third wave
IDEAS_FOR = Pool("a podcast about gardening", "a YouTube channel on personal finance", "a newsletter for new parents",
                 "a blog about vegan cooking", "a fundraiser for the school library", "a short film", "a children's book",
                 "a board game about space", "our company's anniversary campaign", "a team newsletter")
WHAT_KIND = Pool("a tagline for my portfolio website", "a catchphrase for our sports team", "a mission statement for a charity",
                 "a headline for a job ad", "a company name for a drone startup", "a title for my photo exhibition",
                 "a motto for our book club", "a brand name for organic dog treats", "a product name for a smart water bottle")
PLAIN = Pool(("a recipe", "a story told by the chef"), ("these meeting notes", "a friendly team update"),
             ("my CV summary", "a confident personal statement"), ("this list of features", "a short paragraph"),
             ("a boring safety notice", "something people will actually read"), ("my travel diary notes", "a blog post"))

FAMILIES += [
    Family("writing/brainstorm", [
        "Brainstorm ten content ideas for {i}.", "Give me creative angles for {i}.", "Write three possible intros for {i}.",
        "Help me come up with a theme and a tagline for {i}.",
    ], {"i": IDEAS_FOR}, count=30),
    Family("writing/short-copy", [
        "Write {w}.", "I need {w}, something memorable.", "Give me a few options for {w}.", "Come up with {w}.",
        "Can you create {w}? Make it short and catchy.",
    ], {"w": WHAT_KIND}, count=35),
    Family("writing/transform", [
        "Turn {t.0} into {t.1}.", "Rewrite {t.0} as {t.1}.", "Help me transform {t.0} into {t.1}.",
    ], {"t": PLAIN}, count=18),
]
