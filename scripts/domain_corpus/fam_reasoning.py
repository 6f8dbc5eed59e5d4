"""reasoning: logic, puzzles, deduction, planning under constraints, trade-offs, arguments, causes."""

from __future__ import annotations

import random

from engine import Family, Pool
from vocab import CITIES, FIRST

NONSENSE = ("bloops", "razzies", "lazzies", "wugs", "florps", "snarks", "zibbles", "quorms", "tovs", "glims")
REAL = ("cats", "mammals", "pets", "doctors", "artists", "runners", "students", "birds", "poets", "engineers",
        "vegetarians", "musicians")


def _cls(rng: random.Random) -> str:
    return rng.choice(NONSENSE if rng.random() < 0.5 else REAL)


def _syllogism(rng: random.Random) -> tuple[str, str, str]:
    a, b, c = rng.sample(NONSENSE if rng.random() < 0.5 else REAL, 3)
    return a, b, c


def _ordering(rng: random.Random) -> str:
    people = rng.sample(FIRST, 4)
    rel = rng.choice([("taller than", "shortest"), ("older than", "youngest"), ("faster than", "slowest"),
                      ("richer than", "poorest"), ("earlier than", "last to arrive")])
    facts = [f"{people[i]} is {rel[0]} {people[i + 1]}" for i in range(3)]
    rng.shuffle(facts)
    return ". ".join(facts) + f". Who is the {rel[1]}?"


def _knights(rng: random.Random) -> str:
    a, b = rng.sample(FIRST, 2)
    return rng.choice([
        f"On an island, knights always tell the truth and knaves always lie. {a} says: '{b} and I are both knaves.' What are {a} and {b}?",
        f"{a} says '{b} is a liar'. {b} says '{a} and I are the same kind'. Knights tell the truth, knaves lie. Who is what?",
        f"Knights never lie, knaves always lie. {a} says: 'At least one of us is a knave.' What can we conclude about {a} and {b}?",
    ])


PUZZLES = Pool(
    "A farmer must cross a river with a wolf, a goat and a cabbage, and the boat holds only one item. How does he do it?",
    "Three boxes are labelled apples, oranges and mixed, and every label is wrong. How can you fix all labels by picking one fruit?",
    "You have 8 balls and one is heavier. How do you find it with two weighings on a balance?",
    "Two jugs hold 3 and 5 litres. How can you measure exactly 4 litres?",
    "Four people must cross a bridge at night with one torch; they take 1, 2, 5 and 10 minutes. What is the fastest plan?",
    "There are 100 lockers and 100 students toggling them in turn. Which lockers are open at the end?",
    "You have two ropes that each burn in an hour, unevenly. How do you measure 45 minutes?",
    "One of three doors hides a car. You pick one, the host opens a goat door and offers a switch. Should you switch?",
    "A prisoner must pick the right door; one guard always lies and one always tells the truth. What single question works?",
    "Five pirates split 100 coins by a voting rule. What does the most senior pirate propose?",
    "How can you cut a cake into 8 equal pieces with only 3 straight cuts?",
    "There are 3 light switches outside a room with one bulb. You may enter once. How do you tell which switch controls it?",
    "A snail climbs 3 metres a day and slips 2 at night in a 10 metre well. When does it get out, and why?",
    "Twelve coins, one counterfeit of unknown weight, three weighings: how do you find it?",
)
OPTIONS = Pool(
    ("rewrite our monolith as microservices", "keep improving the monolith"),
    ("hire two junior engineers", "hire one senior engineer"),
    ("build our own auth system", "buy an identity provider"),
    ("launch the product now with known bugs", "delay the launch by a month"),
    ("rent an apartment in the city centre", "buy a house in the suburbs"),
    ("lease an electric car", "keep my old petrol car"),
    ("take the higher-paying job with a long commute", "stay in my current job"),
    ("open a second café location", "expand the first one"),
    ("offer a freemium plan", "offer only a free trial"),
    ("move our servers to the cloud", "keep them on premises"),
    ("do a master's degree", "start working right away"),
    ("raise prices by 10%", "cut costs instead"),
    ("go with a four-day week", "keep five days with flexible hours"),
)
FACTORS = Pool("cost, risk and time to market", "team skills and long-term maintenance", "cash flow and growth",
               "customer impact and reversibility", "personal stress and career growth", "price, comfort and resale value",
               "scalability and operational burden", "budget and family needs")
ARGUMENTS = Pool(
    "Everyone I know likes this phone, so it must be the best phone on the market.",
    "If we allow students to redo one test, soon they will want to redo every test and grades will mean nothing.",
    "The new manager started in March and sales fell in April, so the new manager caused the drop.",
    "You can't trust her view on taxes; she's not even an economist.",
    "Either we ban cars downtown or the city will choke on pollution.",
    "No one has proven that the supplement doesn't work, so it must work.",
    "This medicine is natural, so it is safe.",
    "Most successful founders dropped out of college, so dropping out makes you more likely to succeed.",
    "We've always done it this way and it has worked, so there is no reason to change.",
    "Ice cream sales and drownings both rise in summer, so ice cream causes drowning.",
    "Since the plan is supported by 70% of experts, the remaining 30% must be biased.",
)
CAUSAL = Pool(
    ("Sales dropped 20% after we redesigned the checkout page", "an online shop"),
    ("Our app's crash reports doubled after the last release", "a mobile app"),
    ("Attendance at the gym fell sharply in the spring", "a gym"),
    ("Customer support tickets tripled on Mondays", "a SaaS company"),
    ("The tomatoes in my garden split open this summer", "a garden"),
    ("Newsletter open rates fell after we changed the sending time", "a newsletter"),
    ("The team ships fewer features since we added code review", "a software team"),
    ("Commute times rose after a new bridge opened", "a city"),
    ("Our website traffic spiked on a Sunday night", "a blog"),
    ("Students did worse on the exam despite more homework", "a school"),
)
FERMI = Pool(("piano tuners", "Chicago"), ("golf balls", "a school bus"), ("windows", "Manhattan"),
             ("litres of coffee drunk per day", "Germany"), ("dogs", "London"), ("words spoken per day", "the world"),
             ("gas stations", "the United States"), ("tennis balls", "a swimming pool"),
             ("trees", "Central Park"), ("pizzas eaten per day", "New York"), ("hairs", "a human head"))
RIDDLES = Pool(
    "A man pushes his car to a hotel and tells the owner he's bankrupt. Why?",
    "A woman shoots her husband, holds him underwater, then hangs him, and they have dinner together. How?",
    "What gets wetter the more it dries?",
    "A man lives on the 10th floor but takes the lift only to the 7th unless it's raining. Why?",
    "Two fathers and two sons go fishing and catch three fish, one each. How?",
    "A doctor says 'I can't operate, this boy is my son', but the doctor is not the boy's father. Explain.",
    "What has keys but can't open locks?",
    "A plane crashes exactly on the border between two countries. Where do they bury the survivors?",
    "If you have me, you want to share me; if you share me, you don't have me. What am I?",
)


def _schedule(rng: random.Random) -> str:
    names = rng.sample(FIRST, 4)
    return (f"Schedule meetings with {', '.join(names)} on one day between 9 and 5. {names[0]} is only free in the "
            f"morning, {names[1]} can't meet right after {names[2]}, and {names[3]} needs the last slot. "
            "Is there a valid order? Explain your reasoning.")


def _trip(rng: random.Random) -> str:
    cities = rng.sample(CITIES, 4)
    return (f"Plan a {rng.randint(3, 7)}-day trip through {', '.join(cities)} that minimises travel time, "
            f"starts in {cities[0]} and must be in {cities[2]} on the last day. Explain the order you choose.")


def _odd(rng: random.Random) -> str:
    groups = [["apple", "banana", "cherry", "carrot"], ["Mercury", "Venus", "Moon", "Mars"],
              ["violin", "cello", "flute", "viola"], ["square", "triangle", "circle", "cube"],
              ["Paris", "Rome", "Sydney", "Madrid"], ["copper", "iron", "plastic", "silver"]]
    g = rng.choice(groups)[:]
    rng.shuffle(g)
    return ", ".join(g)


def _pattern(rng: random.Random) -> str:
    return rng.choice(["J, F, M, A, M, J, J, ?", "O, T, T, F, F, S, S, ?", "AZ, BY, CX, ?", "M, T, W, T, F, ?",
                       "1, 11, 21, 1211, 111221, ?", "Z, X, V, T, ?", "circle, square, triangle, circle, square, ?"])


FAMILIES = [
    Family("reasoning/syllogism", [
        "If all {s.0} are {s.1} and some {s.1} are {s.2}, are some {s.0} {s.2}?",
        "All {s.0} are {s.1}. No {s.1} are {s.2}. Can any {s.0} be {s.2}? Explain.",
        "Premise 1: every {s.0} is a kind of {s.1}. Premise 2: some {s.2} are not {s.1}. What follows logically?",
        "Is this valid reasoning: all {s.0} are {s.1}, so all {s.1} are {s.0}?",
        "Some {s.0} are {s.1} and all {s.1} are {s.2}. Does it follow that some {s.0} are {s.2}?",
    ], {"s": _syllogism}, count=45),
    Family("reasoning/ordering", ["{o}", "Logic puzzle: {o}", "{o} Explain how you worked it out."],
           {"o": _ordering}, count=35),
    Family("reasoning/knights", ["{k}", "Puzzle: {k}"], {"k": _knights}, count=30),
    Family("reasoning/classic-puzzle", [
        "{p}", "Can you solve this puzzle? {p}", "Riddle for you: {p} Explain the logic.",
        "I've been stuck on this one: {p}",
    ], {"p": PUZZLES}, count=45),
    Family("reasoning/decision", [
        "Should we {o.0} or {o.1}? Weigh the trade-offs considering {f}.",
        "Help me decide: {o.0} vs {o.1}. What factors matter most?",
        "What are the pros and cons of choosing to {o.0} rather than {o.1}?",
        "I'm torn between two options: {o.0} or {o.1}. Think it through with me, focusing on {f}.",
        "Analyse the decision to {o.0} instead of {o.1} in terms of {f}.",
    ], {"o": OPTIONS, "f": FACTORS}, count=55),
    Family("reasoning/argument", [
        "What is wrong with this argument: \"{a}\"",
        "Identify the logical fallacy in: {a}",
        "Is this reasoning sound? {a}",
        "Find the flaw: {a}",
        "Critique the following claim and explain which assumption fails: {a}",
    ], {"a": ARGUMENTS}, count=45),
    Family("reasoning/causal", [
        "{c.0}. What are possible explanations, and how would you test them?",
        "{c.0} at {c.1}. Reason about the likely causes.",
        "How would you figure out why {c.0}? List hypotheses and what evidence would separate them.",
        "Think step by step: {c.0}. Is it correlation or causation?",
    ], {"c": CAUSAL}, count=45),
    Family("reasoning/planning", ["{sched}", "{trip}"], {"sched": _schedule, "trip": _trip}, count=35),
    Family("reasoning/fermi", [
        "Estimate how many {f.0} there are in {f.1}. Walk me through your reasoning.",
        "Roughly how many {f.0} are in {f.1}? Show your assumptions.",
        "Fermi problem: number of {f.0} in {f.1}.",
    ], {"f": FERMI}, count=30),
    Family("reasoning/riddle", ["{r}", "Here's a riddle: {r}", "Lateral thinking puzzle: {r}"],
           {"r": RIDDLES}, count=30),
    Family("reasoning/es", [
        "Si todos los {c} son {c2} y algunos {c2} son pintores, ¿son algunos {c} pintores? Razona la respuesta.",
        "¿Qué falla en este argumento? {a}",
        "Ayúdame a decidir entre {o.0} y {o.1}; analiza los pros y los contras.",
    ], {"c": ["gatos", "médicos", "estudiantes", "músicos", "corredores"],
        "a": ["Todos mis amigos lo usan, así que debe ser lo mejor.", "Si no estás conmigo, estás contra mí.",
              "Nadie ha demostrado que sea falso, entonces es verdad."], "o": OPTIONS},
        count=14, lang="es", wrap=False),
    Family("reasoning/fr", [
        "Énigme : {p}", "Quel est le sophisme dans cet argument : « {a} » ?",
        "Si tous les A sont des B et aucun B n'est un C, que peut-on conclure sur les A et les C ?",
    ], {"p": ["trois interrupteurs commandent une seule ampoule dans une autre pièce ; comment savoir lequel ?",
              "un fermier doit traverser une rivière avec un loup, une chèvre et un chou. Comment faire ?",
              "deux cordes brûlent chacune en une heure ; comment mesurer 45 minutes ?"],
        "a": ["Tout le monde le fait, donc c'est bien.", "Il n'est pas expert, donc il a tort."]},
        count=12, lang="fr", wrap=False),
    Family("reasoning/de", [
        "Rätsel: {p}", "Was ist der logische Fehler in diesem Argument: „{a}“?",
        "Wir überlegen, ob wir {o.0} oder {o.1} sollten. Wäge die Vor- und Nachteile ab.",
    ], {"p": ["Drei Kisten sind alle falsch beschriftet. Wie korrigierst du sie mit einem Griff?",
              "Vier Personen müssen nachts mit einer Taschenlampe über eine Brücke. Wie geht es am schnellsten?"],
        "a": ["Das haben wir schon immer so gemacht, also ist es richtig.", "Alle meine Freunde glauben das, also stimmt es."],
        "o": OPTIONS}, count=12, lang="de", wrap=False),

    # ---- held out
    Family("reasoning/game-strategy", [
        "In a game where two players take turns removing 1 to 3 stones from a pile of {n}, and whoever takes the "
        "last stone wins, should I go first? What's the winning strategy?",
        "In tic-tac-toe, X takes a corner and O takes the centre. What should X do next, and why?",
        "Two players alternately name numbers from 1 to 10, adding to a running total; whoever reaches {n} wins. "
        "Who has the winning strategy?",
        "In rock-paper-scissors against someone who never repeats a move, what is the best strategy?",
        "What's the optimal opening strategy in Connect Four and why does it work?",
    ], {"n": lambda r: str(r.randint(15, 50))}, count=30, held_out=True),
    Family("reasoning/counterfactual", [
        "If {e} had never happened, how would {o} likely be different? Reason it through.",
        "Suppose {e} never happened. Trace the consequences for {o} step by step.",
        "Imagine a world where {e} didn't occur. What would follow for {o}, and how confident can we be?",
    ], {"e": ["the printing press", "the invention of the shipping container", "the 2008 financial crisis",
              "the smartphone", "the discovery of penicillin", "remote work becoming common"],
        "o": ["the spread of news", "global trade", "housing prices", "how people shop", "public health",
              "city centres"]}, count=30, held_out=True),
    Family("reasoning/diagnose", [
        "My car won't start but the lights and radio work. Walk through what could be wrong, systematically.",
        "The Wi-Fi works on my phone but not on my laptop. How do I narrow down the cause step by step?",
        "Our {thing} stopped {doing} this morning and nothing changed overnight. How should I reason about the cause?",
        "Only some customers in {city} report the problem. What does that tell us, and what would you check first?",
    ], {"thing": ["dishwasher", "coffee machine", "printer", "heating system", "sprinkler system"],
        "doing": ["draining", "heating up", "responding", "turning on"], "city": list(CITIES)},
        count=30, held_out=True),
    Family("reasoning/odd-pattern", [
        "Which one doesn't belong, and why: {odd}?", "Odd one out: {odd}. Explain your logic.",
        "What comes next in this sequence: {pat}", "Figure out the rule and the next item: {pat}",
    ], {"odd": _odd, "pat": _pattern}, count=30, held_out=True),
    Family("reasoning/held-lang", [
        "Qual é a falha lógica neste argumento: se chove, a rua fica molhada; a rua está molhada, logo choveu?",
        "Hay tres interruptores y una bombilla en otra habitación. Solo puedes entrar una vez. ¿Cómo averiguas cuál es?",
        "Wenn alle Ärzte Akademiker sind und einige Akademiker Sportler, sind dann einige Ärzte Sportler?",
        "Devrions-nous {o.0} ou {o.1} ? Raisonne étape par étape.",
    ], {"o": OPTIONS}, count=12, held_out=True, lang="mixed", wrap=False),
]

# ---- more training breadth
DILEMMAS = Pool(
    "A runaway trolley will hit five people unless you divert it onto a track with one person. What should you do, and why?",
    "You find a wallet with $500 and an ID. Returning it costs you a day. Reason through what you should do.",
    "A self-driving car must choose between swerving into a wall or hitting a pedestrian. How should it decide?",
    "Is it ever right to lie to protect a friend? Argue both sides and conclude.",
    "Should a doctor break confidentiality to warn someone at risk? Weigh the principles.",
    "If a cure could save millions but was tested unethically, should it be used? Reason it through.",
)
ANALOGIES = Pool(("hand", "glove", "foot"), ("bird", "nest", "bee"), ("painter", "brush", "writer"),
                 ("fish", "water", "bird"), ("day", "night", "summer"), ("author", "book", "composer"),
                 ("key", "lock", "password"), ("seed", "tree", "egg"), ("doctor", "hospital", "teacher"))
PRIORITIES = Pool("fix the checkout bug, answer investor emails, hire a designer, plan the offsite",
                  "study for a maths exam on Monday, finish an essay due Tuesday, work a shift on Sunday",
                  "renew my passport, book flights, find a cat sitter, pack",
                  "refactor the API, write docs, fix two flaky tests, review three pull requests",
                  "call the plumber, pay rent, do groceries, return a parcel before it expires")
PROPOSITIONS = Pool("If P implies Q and Q is false, what can we say about P?",
                    "Is 'if it rains, I stay home' equivalent to 'if I don't stay home, it doesn't rain'?",
                    "Write the truth table for (A and B) or not A, and say when it is false.",
                    "If either the butler or the maid did it, and the maid has an alibi, who did it?",
                    "Every student who passed studied. Kim studied. Did Kim pass? Explain.",
                    "No reptiles have fur. All snakes are reptiles. What follows?",
                    "If all A are B and no C are B, can any A be C?")
COMPETITIVE = Pool("A competitor cut prices by 20%. Should we match them? Reason about the consequences.",
                   "Our biggest customer wants an exclusive deal. What are the strategic risks of saying yes?",
                   "Why would a company give away its product for free? Think through the incentives.",
                   "Two coffee shops on the same street: what happens if one lowers prices? Reason like a game theorist.",
                   "If everyone in a town switches to electric cars, what second-order effects would you expect?",
                   "A city makes buses free. Predict the effects and explain your chain of reasoning.")
CLAIMS = Pool("People only use 10% of their brains.", "Cracking your knuckles causes arthritis.",
              "Sugar makes children hyperactive.", "A country's chocolate consumption predicts its Nobel prizes.",
              "Cities with more police have more crime, so police cause crime.",
              "Most car accidents happen close to home, so driving far is safer.",
              "Hospitals have the most sick people, so hospitals make people sick.")
AGE = Pool("When I was 6, my sister was half my age. Now I'm 70. How old is my sister?",
           "A father is four times as old as his son; in 20 years he'll be twice as old. How old are they now? Reason it out.",
           "If yesterday was two days after Monday, what day will it be tomorrow?",
           "A man has 53 socks in his drawer: 21 blue, 15 black, 17 red. In the dark, how many must he take to be sure of a pair?",
           "If you're running a race and pass the last person, what position are you in?",
           "How many times can you subtract 10 from 100?")

FAMILIES += [
    Family("reasoning/dilemma", ["{d}", "Ethics question: {d}", "Help me reason about this: {d}"], {"d": DILEMMAS},
           count=18),
    Family("reasoning/analogy", [
        "{a.0} is to {a.1} as {a.2} is to what? Explain.", "Complete the analogy: {a.0} : {a.1} :: {a.2} : ?",
        "Finish this analogy and explain the relationship: {a.0} - {a.1}, {a.2} - ?",
    ], {"a": ANALOGIES}, count=20),
    Family("reasoning/prioritise", [
        "I have to {p}. In what order should I do them, and why?", "How should I prioritise these: {p}?",
        "Help me think through the order for: {p}. What depends on what?",
    ], {"p": PRIORITIES}, count=15),
    Family("reasoning/propositional", ["{p}", "Logic question: {p}", "{p} Show your reasoning."], {"p": PROPOSITIONS},
           count=20),
    Family("reasoning/strategy", ["{c}", "Strategy question: {c}"], {"c": COMPETITIVE}, count=12),
    Family("reasoning/evaluate-claim", [
        "Is this claim plausible: '{c}' Reason it through.", "What's the flaw in the idea that {c}",
        "How would you test whether '{c}' is true?", "What assumptions are hidden in: {c}",
    ], {"c": CLAIMS}, count=25),
    Family("reasoning/trick", ["{q}", "Brain teaser: {q}", "{q} Think carefully."], {"q": AGE}, count=18),
]

# ---- third wave: sub-topics a real corpus covers (templates and vocabulary distinct from held-out ones)
def _seq(rng: random.Random) -> str:
    a, d = rng.randint(1, 9), rng.randint(2, 7)
    return rng.choice([", ".join(str(a + d * i) for i in range(5)), ", ".join(str(a * 2 ** i) for i in range(5)),
                       ", ".join(str(i * i + a) for i in range(1, 6)), "A, C, F, J, O", "2, 3, 5, 7, 11, 13",
                       "Monday, Wednesday, Saturday", "red, orange, yellow, green"])


def _seating(rng: random.Random) -> str:
    ppl = rng.sample(FIRST, 4)
    return (f"{ppl[0]}, {ppl[1]}, {ppl[2]} and {ppl[3]} sit in a row. {ppl[0]} is not at either end, {ppl[1]} sits "
            f"directly right of {ppl[2]}, and {ppl[3]} is at the left end. What is the order?")


def _grid(rng: random.Random) -> str:
    ppl = rng.sample(FIRST, 3)
    pets = rng.sample(["a cat", "a dog", "a parrot", "a fish"], 3)
    return (f"{ppl[0]}, {ppl[1]} and {ppl[2]} each own one of {', '.join(pets)}. {ppl[0]} is allergic to fur, "
            f"{ppl[1]} doesn't own {pets[0]}. Who owns what? Show the deduction.")


GAMES = Pool("In chess, why is controlling the centre considered important early in the game?",
             "In poker, when does it make sense to fold a decent hand? Explain the reasoning.",
             "In Monopoly, which properties are the best investment and why?",
             "What is a Nash equilibrium, illustrated with a simple two-player game?",
             "In Battleship, what's a smart search pattern after a miss?",
             "In sudoku, how do you reason when a row has only two empty cells left?",
             "Why is the first move advantage so large in some games and not others?",
             "In the game of Nim, how do you decide which pile to take from?")
CAUSE_EFFECT = Pool("If interest rates go up, what happens to house prices and why?",
                    "What would happen to a lake's ecosystem if all the wolves around it disappeared? Reason it through.",
                    "If a shop doubles its prices, could revenue go up? Explain under what conditions.",
                    "Why do traffic jams sometimes appear without any accident? Walk through the mechanism.",
                    "What chain of events could lead from a drought in one country to higher bread prices elsewhere?",
                    "If everyone saved more money at once, why might the economy shrink?")
INFERENCE = Pool("The lights are on but nobody answers the door, and the car is gone. What can we infer, and what can't we?",
                 "A glass is broken on the floor and the cat is hiding. How confident should we be that the cat did it?",
                 "Footprints lead into a house but none lead out. List the possible explanations from most to least likely.",
                 "The package says delivered but it's not at my door. Reason about where it most likely is.",
                 "Every time I wash my car it rains. Is there a real connection? Think it through.",
                 "The office is empty at 10am on a Tuesday. What are the likely explanations?")

FAMILIES += [
    Family("reasoning/sequence", [
        "Find the pattern in {s} and predict what comes after.", "Which item continues {s}? Justify it.",
        "What rule generates {s}?",
    ], {"s": _seq}, count=25),
    Family("reasoning/seating", ["{x}", "Logic puzzle: {x}", "{y}"], {"x": _seating, "y": _grid}, count=30),
    Family("reasoning/games", ["{g}", "Game theory question: {g}"], {"g": GAMES}, count=14),
    Family("reasoning/cause-effect", ["{c}", "Think it through: {c}"], {"c": CAUSE_EFFECT}, count=12),
    Family("reasoning/inference", ["{i}", "Detective question: {i}", "{i} Use careful reasoning."], {"i": INFERENCE},
           count=18),
    Family("reasoning/think-through", [
        "Help me think through whether to {o.0} or {o.1}.", "What would you do: {o.0} or {o.1}? Explain your reasoning.",
        "Make the case for and against choosing to {o.0}.", "What could go wrong if we {o.0}? Reason about the risks.",
        "Which is the better decision, to {o.0} or to {o.1}, if money is tight?",
    ], {"o": OPTIONS}, count=40),
]
