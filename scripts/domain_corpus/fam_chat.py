"""chat: small talk, recommendations, general knowledge, opinions, everyday advice, fun."""

from __future__ import annotations

from engine import Family, Pool
from vocab import CITIES, COUNTRIES

GREETINGS = Pool("Hi, how are you today?", "Good morning!", "Hey there", "hello :)", "What's up?", "Yo, how's it going?",
                 "Hi! Nice to meet you.", "Good evening, how was your day?", "Howdy!", "Hey, are you there?",
                 "Morning! Had your coffee yet?", "Hi again", "Hello friend", "Heyyy", "Greetings!",
                 "Good afternoon :)", "hiya", "Hey, long time no see!")
SMALLTALK = Pool("I'm bored, talk to me.", "Can we just chat for a bit?", "I had a really long day.",
                 "It's raining again here, ugh.", "Guess what, I got a new puppy!", "I just finished my exams!",
                 "Tell me something interesting.", "What's your favourite season?", "Do you like music?",
                 "I can't sleep. Keep me company?", "It's Friday finally!", "I'm so excited for the weekend.",
                 "My team won the match last night!", "Today was my first day at a new job.",
                 "I'm procrastinating right now haha", "What are you up to?")
MEDIA = Pool(("movie", "Inception"), ("book", "The Hobbit"), ("TV series", "Breaking Bad"), ("podcast", "Serial"),
             ("anime", "Spirited Away"), ("album", "Rumours by Fleetwood Mac"), ("video game", "Zelda: Breath of the Wild"),
             ("board game", "Catan"), ("novel", "Pride and Prejudice"), ("documentary", "Planet Earth"),
             ("comedy", "The Office"), ("thriller", "Gone Girl"))
SITUATIONS = Pool(("movie", "tonight"), ("book", "a long flight"), ("gift", "my dad's 60th birthday"),
                  ("restaurant type", "a first date"), ("podcast", "my commute"), ("game", "a family evening"),
                  ("houseplant", "a dark apartment"), ("hobby", "the winter"), ("snack", "a road trip"),
                  ("song", "a rainy Sunday"), ("dog breed", "a small flat"), ("board game", "two players"))
TRIVIA = Pool("Why is the sky blue?", "How far away is the moon?", "Who painted the Mona Lisa?",
              "How many bones are in the human body?", "Why do cats purr?", "What's the tallest mountain in the world?",
              "Who invented the telephone?", "How do bees make honey?", "Why do we have leap years?",
              "How long do elephants live?", "What language do they speak in Brazil?", "Why is the ocean salty?",
              "When did the Berlin Wall fall?", "How do airplanes stay in the air?", "What's the biggest animal ever?",
              "Why do onions make you cry?", "Who was Cleopatra?", "How many time zones does Russia have?",
              "Why do leaves change colour in autumn?", "What is the oldest city in the world?",
              "Do goldfish really have a three-second memory?", "How hot is the sun?")
OPINIONS = Pool("pineapple on pizza", "working from home", "cats vs dogs", "superhero movies", "New Year's resolutions",
                "reality TV", "the Oxford comma", "tipping culture", "e-books vs paper books", "winter",
                "open-plan offices", "vinyl records", "camping", "early mornings", "social media detoxes")
GOALS = Pool("sleep better", "stay motivated to exercise", "make friends in a new city", "stop procrastinating",
             "drink more water", "save money on groceries", "be less nervous before presentations",
             "wake up earlier", "read more books", "keep my plants alive", "spend less time on my phone",
             "get along better with my roommate", "stay focused while studying", "cook more at home")
ABOUT = Pool("What's your name?", "Are you a real person?", "Do you have feelings?", "Can you remember our last chat?",
             "Who made you?", "What can you do?", "Do you dream?", "Are you smarter than me?", "How old are you?",
             "What's your favourite colour?", "Do you ever get tired?", "Can I call you Sam?")
CLOSINGS = Pool("Thanks, that was helpful!", "ok cool", "lol that's funny", "Thank you so much!", "Great, bye!",
                "Perfect, thanks!", "haha nice", "You're the best", "Got it, thanks.", "Awesome, appreciate it",
                "Good night!", "see you tomorrow", "that's all for now", "Cheers!", "Nice, love it")
JOKE_TOPICS = Pool("cats", "programmers", "coffee", "penguins", "Mondays", "dentists", "pirates", "the weather",
                   "teachers", "vegetables", "dinosaurs", "socks")
ANIMALS = Pool("octopuses", "owls", "sloths", "honeybees", "dolphins", "crows", "axolotls", "giraffes", "penguins",
               "red pandas", "tardigrades", "koalas")
INGREDIENTS = Pool("eggs, spinach and feta", "leftover rice and some vegetables", "chickpeas and a can of tomatoes",
                   "potatoes and cheese", "pasta, garlic and lemon", "bananas that are going brown",
                   "chicken thighs and yoghurt", "a bag of lentils", "tofu and broccoli")
TRIPS = Pool(("a weekend in", "Lisbon"), ("a hiking trip to", "the Alps"), ("two weeks in", "Japan"),
             ("a beach holiday in", "Greece"), ("a business trip to", "Berlin"), ("a winter trip to", "Iceland"),
             ("a road trip through", "California"), ("a long weekend in", "Rome"))

FAMILIES = [
    Family("chat/greeting", ["{g}", "{g} {s}"], {"g": GREETINGS, "s": SMALLTALK}, count=45, wrap=False),
    Family("chat/smalltalk", ["{s}", "{s} What about you?", "So... {s}"], {"s": SMALLTALK}, count=35, wrap=False),
    Family("chat/recommend", [
        "Can you recommend a {m.0} similar to {m.1}?", "What's a good {s.0} for {s.1}?",
        "I loved {m.1}. What should I watch or read next?", "Any suggestions for a {s.0} for {s.1}?",
        "Recommend me a {m.0} like {m.1}, please.", "What {s.0} would you pick for {s.1}?",
    ], {"m": MEDIA, "s": SITUATIONS}, count=60),
    Family("chat/trivia", [
        "{t}", "Random question: {t}", "I've always wondered, {t}", "{t} Just curious.",
        "What is the capital of {country}?", "What's the weather usually like in {city} in spring?",
        "What's {city} famous for?",
    ], {"t": TRIVIA, "country": COUNTRIES, "city": CITIES}, count=70),
    Family("chat/opinion", [
        "What do you think about {o}?", "Is {o} overrated?", "Hot take: {o} is great. Agree?",
        "Be honest, how do you feel about {o}?", "Team yes or team no on {o}?",
    ], {"o": OPINIONS}, count=45),
    Family("chat/advice", [
        "How can I {g}?", "Any tips to {g}?", "I want to {g}. Where do I start?", "What helps you {g}?",
        "Do you have advice on how to {g}?", "I really struggle to {g}. Ideas?",
    ], {"g": GOALS}, count=55),
    Family("chat/about-assistant", ["{a}", "{a} Just wondering."], {"a": ABOUT}, count=25, wrap=False),
    Family("chat/closing", ["{c}"], {"c": CLOSINGS}, count=25, wrap=False),
    Family("chat/fun", [
        "Tell me a joke about {j}.", "Tell me a fun fact about {a}.", "Know any good jokes about {j}?",
        "Give me a fun fact I can share at dinner.", "Something cool about {a}?", "Make me laugh!",
    ], {"j": JOKE_TOPICS, "a": ANIMALS}, count=40),
    Family("chat/everyday", [
        "What can I cook with {i}?", "What should I pack for {t.0} {t.1}?", "Is it worth visiting {t.1}?",
        "Quick dinner idea with {i}?", "What should I not miss on {t.0} {t.1}?",
    ], {"i": INGREDIENTS, "t": TRIPS}, count=40),
    Family("chat/es", [
        "¡Hola! ¿Qué tal estás?", "¿Me recomiendas una película para esta noche?", "Cuéntame un chiste.",
        "¿Por qué el cielo es azul?", "Buenos días, ¿cómo va todo?", "Gracias, me ayudaste mucho.",
        "¿Qué opinas de la pizza con piña?", "¿Qué libro me recomiendas para el verano?",
    ], {}, count=14, lang="es", wrap=False),
    Family("chat/fr", [
        "Salut, ça va ?", "Tu peux me conseiller un bon livre ?", "Raconte-moi une blague.",
        "Merci beaucoup, bonne soirée !", "Qu'est-ce que tu penses du télétravail ?", "Bonjour ! Quoi de neuf ?",
    ], {}, count=10, lang="fr", wrap=False),
    Family("chat/de", [
        "Hallo, wie geht's dir?", "Kannst du mir einen guten Film empfehlen?", "Erzähl mir einen Witz.",
        "Danke, das war hilfreich!", "Guten Morgen! Was machst du so?", "Was hältst du von Ananas auf Pizza?",
    ], {}, count=10, lang="de", wrap=False),
    Family("chat/mixed", [
        "hola! can you recommend a good series para ver este fin de semana?", "merci! that was super helpful",
        "Guten Morgen, how are you today?", "ciao! tell me a fun fact please", "jaja that's so funny, gracias",
    ], {}, count=8, lang="mixed", wrap=False),

    # ---- held out
    Family("chat/feelings", [
        "I'm feeling {e} today because {r}.", "Honestly I'm kind of {e}. {r}.", "I feel {e} and I don't know why.",
        "Can I vent for a second? {r} and I'm {e}.",
    ], {"e": ["lonely", "anxious", "a bit down", "stressed", "happy", "nervous", "overwhelmed", "proud"],
        "r": ["my best friend moved away", "I have a job interview tomorrow", "I passed my driving test",
              "work has been crazy", "it's my birthday and nobody remembered", "my cat is sick"]},
        count=35, held_out=True),
    Family("chat/would-you-rather", [
        "Would you rather {a} or {b}?", "If you could {a}, would you?", "Hypothetically, if you could {a}, what would you do first?",
    ], {"a": ["fly", "be invisible", "live in the 1920s", "speak every language", "never sleep", "have a pet dragon",
              "live on a boat", "time travel once"],
        "b": ["read minds", "breathe underwater", "live on the moon", "talk to animals", "be famous"]},
        count=30, held_out=True),
    Family("chat/idioms", [
        "What does '{i}' mean?", "Where does the phrase '{i}' come from?", "Is it rude to say '{i}'?",
        "My friend said '{i}', what did she mean?",
    ], {"i": ["break a leg", "once in a blue moon", "spill the tea", "the ball is in your court", "it's raining cats and dogs",
              "bite the bullet", "low-key", "touch grass", "hit the sack", "under the weather"]},
        count=30, held_out=True),
    Family("chat/pets-hobbies", [
        "My {p} keeps {b}. Is that normal?", "Is it okay to give my {p} {f}?", "I just started {h}. Any beginner tips?",
        "How often should I walk my {p}?", "What's the best age to start {h}?",
    ], {"p": ["cat", "dog", "hamster", "parrot", "rabbit"],
        "b": ["scratching the sofa", "meowing at night", "chewing my shoes", "hiding under the bed"],
        "f": ["cheese", "bananas", "peanut butter", "milk"],
        "h": ["knitting", "rock climbing", "birdwatching", "learning guitar", "pottery", "running"]},
        count=35, held_out=True),
    Family("chat/held-lang", [
        "Oi, tudo bem?", "Ciao! Come stai oggi?", "¿Cuál es tu comida favorita?", "Tu connais une bonne série à regarder ?",
        "Wie war dein Tag?", "Olá! Me conta uma curiosidade.", "Grazie mille, sei gentilissimo!",
        "Buenas noches, hasta mañana!",
    ], {}, count=12, held_out=True, lang="mixed", wrap=False),
]

# ---- more training breadth
HOWTO_LIFE = Pool("tie a tie", "get rid of hiccups", "fall asleep faster", "remove a wine stain", "boil an egg perfectly",
                  "keep cut flowers fresh", "fold a fitted sheet", "stop my glasses fogging up", "clean a cast-iron pan",
                  "meet people after moving", "keep a conversation going", "ask for a day off politely", "pick a ripe avocado",
                  "stay warm in a cold flat", "get over jet lag", "break in new shoes")
DIFFS = Pool(("baking soda", "baking powder"), ("a crocodile", "an alligator"), ("weather", "climate"),
             ("a latte", "a cappuccino"), ("a rabbit", "a hare"), ("a virus", "bacteria"), ("a lake", "a pond"),
             ("jam", "jelly"), ("England", "Great Britain"), ("a turtle", "a tortoise"), ("a cold", "the flu"),
             ("a moth", "a butterfly"))
IS_IT = Pool("safe to eat raw cookie dough", "bad to sleep with wet hair", "healthy to eat eggs every day",
             "okay to drink coffee at night", "weird to eat cereal for dinner", "normal to talk to yourself",
             "true that we swallow spiders in our sleep", "rude to leave a party without saying goodbye",
             "worth learning Latin", "bad to crack your knuckles")
TELL_ME = Pool("the Roman Empire", "black holes", "the Great Barrier Reef", "the history of chocolate", "Frida Kahlo",
               "the Northern Lights", "how the pyramids were built", "the Olympics", "volcanoes", "the Titanic",
               "honeybees", "the first moon landing")
MOODS = Pool("Today was awful.", "I'm so excited about my trip next week!", "Ugh, Mondays.", "I finally finished my thesis!!",
             "I'm kind of nervous about tomorrow.", "Feeling great today :)", "I'm exhausted.", "I'm in such a good mood",
             "Life is weird lately.", "I miss my family.")
PETS = Pool("cat", "puppy", "hamster", "goldfish", "turtle", "parakeet", "bunny")

FAMILIES += [
    Family("chat/life-howto", [
        "How do I {h}?", "What's the trick to {h}?", "Any tips on how to {h}?", "Best way to {h}?",
        "My mum always knew how to {h}. How does it work?",
    ], {"h": HOWTO_LIFE}, count=40),
    Family("chat/difference", [
        "What's the difference between {d.0} and {d.1}?", "Is {d.0} the same as {d.1}?", "{d.0} vs {d.1}, what's the difference?",
    ], {"d": DIFFS}, count=30),
    Family("chat/is-it", ["Is it {i}?", "Honest question: is it {i}?", "Is it really {i}?"], {"i": IS_IT}, count=25),
    Family("chat/tell-me", [
        "Tell me about {t}.", "What's interesting about {t}?", "Can you tell me a bit about {t}?", "I want to learn about {t}.",
    ], {"t": TELL_ME}, count=30),
    Family("chat/mood", ["{m}", "{m} How's your day?", "{m} Just needed to tell someone."], {"m": MOODS}, count=22,
           wrap=False),
    Family("chat/naming-pets", [
        "What should I call my new {p}?", "Name ideas for a {p}?", "What's a cute name for a {p}?",
        "Help me pick a name for our {p}!",
    ], {"p": PETS}, count=18),
]

# ---- third wave
WORDS = Pool("petrichor", "serendipity", "hygge", "FOMO", "ghosting", "cottagecore", "sonder", "wanderlust", "yeet",
             "schadenfreude", "déjà vu", "rizz", "adulting", "doomscrolling")
SAYINGS = Pool("an apple a day keeps the doctor away", "curiosity killed the cat", "the early bird catches the worm",
               "don't count your chickens before they hatch", "every cloud has a silver lining", "kill two birds with one stone")
FEEL = Pool("sad", "lonely", "stressed out", "homesick", "really happy", "nervous", "grumpy", "unmotivated")
CHAT_Q = Pool("If you could travel anywhere, where would you go?", "What's your idea of a perfect day?",
              "Cats or dogs?", "What's the best advice you've ever heard?", "Do you prefer mountains or beaches?",
              "What would you do with a million dollars?", "Summer or winter?", "What's the funniest word you know?",
              "Do you believe in luck?", "What's overrated in your opinion?", "Sweet or savoury breakfast?")

FAMILIES += [
    Family("chat/words", [
        "What does {w} mean?", "Is {w} a real word?", "How do you use '{w}' in a sentence?", "Where does the word {w} come from?",
        "What's the meaning of the saying '{s}'?", "Is it true that {s}?",
    ], {"w": WORDS, "s": SAYINGS}, count=35),
    Family("chat/feel", [
        "I feel {f} today.", "Feeling {f}, can you cheer me up?", "Why do I feel {f} on Sundays?", "I'm {f}. Talk to me?",
        "What do you do when you feel {f}?",
    ], {"f": FEEL}, count=28),
    Family("chat/questions-for-you", ["{q}", "Random question for you: {q}", "{q} I'll go first if you want."],
           {"q": CHAT_Q}, count=25, wrap=False),
]
