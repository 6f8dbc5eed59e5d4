"""Non-English and mixed-language training families (Spanish, French, German, Portuguese, Italian)."""

from __future__ import annotations

import random

from engine import Family, Pool

LANGS = Pool("Python", "JavaScript", "Java", "C", "Go", "Rust", "PHP", "C#", "TypeScript", "Kotlin")


def _int(lo: int, hi: int):
    return lambda rng: str(rng.randint(lo, hi))


def _eq(rng: random.Random) -> str:
    return f"{rng.randint(2, 9)}x + {rng.randint(1, 30)} = {rng.randint(31, 99)}"


CODE = [
    Family("code/es2", [
        "Tengo un error en mi código {lang}: {err}. ¿Cómo lo arreglo?", "¿Qué significa {kw} en {lang}?",
        "Explícame la diferencia entre una lista y un diccionario en {lang}.", "¿Cómo instalo {pkg} en Windows?",
        "Mi función en {lang} devuelve undefined, ¿por qué?", "Hazme un script en {lang} que lea un archivo y cuente las líneas.",
        "¿Cómo se hace una consulta SQL que agrupe por mes?", "Necesito un bucle en {lang} que recorra un array.",
    ], {"lang": LANGS, "err": ["NullPointerException", "IndexError", "segmentation fault", "SyntaxError"],
        "kw": ["async", "static", "yield", "lambda"], "pkg": ["Node.js", "Python", "Docker", "Git"]},
        count=30, lang="es", wrap=False),
    Family("code/fr2", [
        "J'ai une erreur {err} dans mon code {lang}, comment la corriger ?", "Que veut dire le mot-clé {kw} en {lang} ?",
        "Comment installer {pkg} sur Ubuntu ?", "Écris un script {lang} qui renomme tous les fichiers d'un dossier.",
        "Pourquoi ma requête SQL renvoie des doublons ?", "Comment faire une boucle sur un tableau en {lang} ?",
        "Peux-tu m'expliquer les promesses en JavaScript ?",
    ], {"lang": LANGS, "err": ["TypeError", "IndexError", "NullPointerException", "segmentation fault"],
        "kw": ["async", "static", "yield", "const"], "pkg": ["Node.js", "Python", "Docker", "PostgreSQL"]},
        count=25, lang="fr", wrap=False),
    Family("code/de2", [
        "Ich bekomme den Fehler {err} in meinem {lang}-Code. Was mache ich falsch?", "Was bedeutet {kw} in {lang}?",
        "Wie installiere ich {pkg} unter macOS?", "Schreib ein {lang}-Skript, das alle Dateien in einem Ordner umbenennt.",
        "Warum liefert meine SQL-Abfrage doppelte Zeilen?", "Wie durchlaufe ich ein Array in {lang}?",
        "Kannst du mir Rekursion mit einem Codebeispiel erklären?",
    ], {"lang": LANGS, "err": ["TypeError", "IndexError", "NullPointerException", "Segmentation fault"],
        "kw": ["async", "static", "yield", "final"], "pkg": ["Node.js", "Python", "Docker", "Git"]},
        count=25, lang="de", wrap=False),
    Family("code/pt-it", [
        "Como faço um loop em {lang}?", "Meu código {lang} dá erro de {err}, o que pode ser?",
        "Como instalo o {pkg} no Linux?", "Come posso leggere un file CSV in {lang}?",
        "Il mio programma {lang} va in crash con {err}, perché?", "Scrivi una funzione {lang} che ordina una lista.",
    ], {"lang": LANGS, "err": ["NullPointerException", "IndexError", "TypeError"], "pkg": ["Docker", "Node.js", "Python"]},
        count=24, lang="other", wrap=False),
]

MATH = [
    Family("math/es2", [
        "¿Cuánto es el {p}% de {n}?", "Resuelve {eq} paso a paso.", "¿Cuál es el área de un círculo de radio {a}?",
        "Calcula la media de {a}, {b} y {n}.", "¿Cómo se calcula una raíz cuadrada a mano?", "Simplifica la fracción {a}/{n}.",
        "¿Cuántos minutos hay en {a} horas?", "¿Qué es una derivada?",
    ], {"p": _int(5, 75), "n": _int(40, 900), "a": _int(2, 30), "b": _int(2, 30), "eq": _eq}, count=30, lang="es", wrap=False),
    Family("math/fr2", [
        "Combien font {p} % de {n} ?", "Résous {eq} en détaillant.", "Quelle est l'aire d'un cercle de rayon {a} ?",
        "Calcule la moyenne de {a}, {b} et {n}.", "Simplifie la fraction {a}/{n}.", "Qu'est-ce qu'une intégrale ?",
        "Combien de secondes dans {a} heures ?",
    ], {"p": _int(5, 75), "n": _int(40, 900), "a": _int(2, 30), "b": _int(2, 30), "eq": _eq}, count=25, lang="fr", wrap=False),
    Family("math/de2", [
        "Wie viel sind {p} Prozent von {n}?", "Löse {eq} Schritt für Schritt.", "Wie groß ist die Fläche eines Kreises mit Radius {a}?",
        "Berechne den Mittelwert von {a}, {b} und {n}.", "Kürze den Bruch {a}/{n}.", "Was ist eine Ableitung?",
        "Wie viele Minuten hat ein Tag?",
    ], {"p": _int(5, 75), "n": _int(40, 900), "a": _int(2, 30), "b": _int(2, 30), "eq": _eq}, count=25, lang="de", wrap=False),
    Family("math/pt-it", [
        "Quanto é {a} vezes {b}?", "Resolva a equação {eq}.", "Qual é a área de um quadrado de lado {a}?",
        "Quanto fa {a} per {b}?", "Risolvi l'equazione {eq}.", "Qual è il {p}% di {n}?",
    ], {"p": _int(5, 75), "n": _int(40, 900), "a": _int(2, 30), "b": _int(2, 30), "eq": _eq}, count=24, lang="other", wrap=False),
]

REASONING = [
    Family("reasoning/es2", [
        "Tengo que elegir entre {o}. ¿Qué me conviene? Razónalo paso a paso.", "Acertijo: {p}",
        "¿Es válido este razonamiento? {a}", "Si Ana es más alta que Luis y Luis es más alto que Marta, ¿quién es la más baja?",
        "¿Qué conclusiones lógicas se pueden sacar si todos los perros ladran y Rex no ladra?",
    ], {"o": ["alquilar o comprar una casa", "dos ofertas de trabajo", "estudiar un máster o trabajar"],
        "p": ["un granjero debe cruzar un río con un lobo, una cabra y una col.", "¿cómo mides 4 litros con jarras de 3 y 5?"],
        "a": ["Si llueve, la calle se moja. La calle está mojada, así que llovió.", "Todos lo compran, así que es bueno."]},
        count=20, lang="es", wrap=False),
    Family("reasoning/fr2", [
        "Je dois choisir entre {o}. Aide-moi à peser le pour et le contre.", "Devinette logique : {p}",
        "Ce raisonnement est-il valide ? {a}", "Si Paul est plus grand que Léa et Léa plus grande que Marc, qui est le plus petit ?",
    ], {"o": ["louer ou acheter", "deux offres d'emploi", "un master ou un emploi"],
        "p": ["trois boîtes sont mal étiquetées, comment les corriger en tirant un seul fruit ?",
              "comment mesurer 4 litres avec des bidons de 3 et 5 litres ?"],
        "a": ["S'il pleut, la route est mouillée ; elle est mouillée, donc il a plu.", "Tout le monde le dit, donc c'est vrai."]},
        count=16, lang="fr", wrap=False),
    Family("reasoning/de2", [
        "Ich muss mich zwischen {o} entscheiden. Hilf mir, die Vor- und Nachteile abzuwägen.", "Logikrätsel: {p}",
        "Ist diese Schlussfolgerung gültig? {a}", "Wenn Tom größer als Anna ist und Anna größer als Ben, wer ist am kleinsten?",
    ], {"o": ["Mieten und Kaufen", "zwei Jobangeboten", "Studium und Ausbildung"],
        "p": ["Ein Bauer muss einen Wolf, eine Ziege und einen Kohl über den Fluss bringen.",
              "Wie misst man 4 Liter mit einem 3- und einem 5-Liter-Krug ab?"],
        "a": ["Wenn es regnet, ist die Straße nass. Die Straße ist nass, also hat es geregnet.", "Alle machen das, also ist es richtig."]},
        count=16, lang="de", wrap=False),
    Family("reasoning/pt-it", [
        "Tenho que decidir entre {o}. Pode me ajudar a pensar nos prós e contras?", "Enigma: {p}",
        "Devo scegliere tra {o}. Ragiona con me sui pro e contro.", "Questo ragionamento è valido? Se piove la strada è bagnata; è bagnata, quindi è piovuto.",
    ], {"o": ["dois empregos", "alugar ou comprar", "due offerte di lavoro"],
        "p": ["três interruptores e uma lâmpada em outro quarto; como descobrir qual acende?"]},
        count=14, lang="other", wrap=False),
]

WRITING = [
    Family("writing/es2", [
        "Escribe un poema sobre {t}.", "Redacta un correo {tone} a {who} sobre {what}.", "Escribe una historia corta sobre {t}.",
        "Ayúdame a escribir un discurso para {occ}.", "Mejora este párrafo y hazlo más claro: 'El proyecto fue bien y todos trabajaron.'",
        "Escribe una descripción de producto para {prod}.",
    ], {"t": ["el otoño", "mi abuela", "una ciudad bajo la lluvia", "un dragón tímido", "el mar"], "tone": ["formal", "amable", "breve"],
        "who": ["mi jefe", "un cliente", "mi casero"], "what": ["un retraso", "una subida de sueldo", "una reclamación"],
        "occ": ["la boda de mi hermana", "una jubilación", "una graduación"], "prod": ["una taza de cerámica", "unas zapatillas"]},
        count=30, lang="es", wrap=False),
    Family("writing/fr2", [
        "Écris un poème sur {t}.", "Rédige un e-mail {tone} à {who} au sujet de {what}.", "Écris une histoire courte sur {t}.",
        "Aide-moi à écrire un discours pour {occ}.", "Écris une description de produit pour {prod}.",
    ], {"t": ["l'hiver", "ma grand-mère", "une ville sous la pluie", "un dragon timide"], "tone": ["formel", "aimable", "court"],
        "who": ["mon patron", "un client", "mon propriétaire"], "what": ["un retard", "une augmentation", "une réclamation"],
        "occ": ["un mariage", "un départ à la retraite"], "prod": ["une tasse en céramique", "des bougies parfumées"]},
        count=25, lang="fr", wrap=False),
    Family("writing/de2", [
        "Schreib ein Gedicht über {t}.", "Verfasse eine {tone} E-Mail an {who} wegen {what}.", "Schreib eine kurze Geschichte über {t}.",
        "Hilf mir, eine Rede für {occ} zu schreiben.", "Schreib eine Produktbeschreibung für {prod}.",
    ], {"t": ["den Winter", "meine Oma", "eine Stadt im Regen", "einen schüchternen Drachen"], "tone": ["förmliche", "freundliche", "kurze"],
        "who": ["meinen Chef", "einen Kunden", "meinen Vermieter"], "what": ["einer Verspätung", "einer Gehaltserhöhung"],
        "occ": ["eine Hochzeit", "einen Abschied"], "prod": ["eine Keramiktasse", "Duftkerzen"]},
        count=25, lang="de", wrap=False),
    Family("writing/pt-it", [
        "Escreva um poema sobre {t}.", "Escreva um e-mail formal para {who}.", "Scrivi una poesia su {t}.",
        "Scrivi un'e-mail gentile a {who}.", "Escreva uma história curta sobre um gato.", "Scrivi un breve racconto su un faro.",
    ], {"t": ["o mar", "a saudade", "l'autunno", "la pioggia"], "who": ["meu chefe", "il mio capo", "um cliente", "un cliente"]},
        count=24, lang="other", wrap=False),
]

CHAT = [
    Family("chat/es2", [
        "¿Me recomiendas {x}?", "¿Qué opinas de {o}?", "¿Por qué {q}?", "Hola, ¿cómo estás hoy?", "Estoy aburrido, ¿hablamos?",
        "Cuéntame algo curioso sobre {a}.", "¡Gracias por todo!", "¿Cuál es la capital de {c}?",
    ], {"x": ["una serie", "un libro para el verano", "un restaurante en Madrid", "un podcast"], "o": ["el teletrabajo", "los gatos"],
        "q": ["bostezamos", "el mar es salado", "los gatos ronronean"], "a": ["los pulpos", "las abejas"], "c": ["Australia", "Canadá", "Japón"]},
        count=30, lang="es", wrap=False),
    Family("chat/fr2", [
        "Tu me conseilles {x} ?", "Qu'est-ce que tu penses de {o} ?", "Pourquoi {q} ?", "Coucou, ça va ?",
        "Raconte-moi un fait amusant sur {a}.", "Merci, bonne nuit !", "Quelle est la capitale de {c} ?",
    ], {"x": ["une série", "un livre pour l'été", "un film ce soir"], "o": ["le télétravail", "les chats"],
        "q": ["le ciel est bleu", "on bâille", "les chats ronronnent"], "a": ["les pieuvres", "les abeilles"], "c": ["l'Australie", "le Canada"]},
        count=25, lang="fr", wrap=False),
    Family("chat/de2", [
        "Kannst du mir {x} empfehlen?", "Was hältst du von {o}?", "Warum {q}?", "Hey, wie läuft's?",
        "Erzähl mir etwas Lustiges über {a}.", "Danke dir, gute Nacht!", "Was ist die Hauptstadt von {c}?",
    ], {"x": ["eine Serie", "ein Buch für den Urlaub", "einen Film für heute Abend"], "o": ["Homeoffice", "Katzen"],
        "q": ["ist der Himmel blau", "gähnen wir", "schnurren Katzen"], "a": ["Kraken", "Bienen"], "c": ["Australien", "Kanada"]},
        count=25, lang="de", wrap=False),
    Family("chat/pt-it", [
        "Olá, tudo bem com você?", "Me recomenda uma série?", "Obrigado pela ajuda!", "Ciao, come va?",
        "Mi consigli un bel libro?", "Grazie, buona serata!", "Qual é a capital da Austrália?", "Perché il cielo è blu?",
    ], {}, count=16, lang="other", wrap=False),
]

EXTRACTION = [
    Family("extraction/es2", [
        "Extrae {what} de este texto: {t}", "Saca {what} en formato JSON: {t}", "¿Qué {q} aparecen en este mensaje? {t}",
    ], {"what": ["los nombres y los teléfonos", "las fechas", "los importes", "los correos electrónicos"],
        "q": ["fechas", "nombres", "direcciones"],
        "t": ["Llama a Marta Ruiz al 600 123 456 antes del 3 de mayo.", "Factura 123: total 45,90 €, vence el 12/06/2024.",
              "Escribe a pedro@correo.es o a lucia@empresa.com.", "Reunión el lunes 4 de marzo en Calle Mayor 5, Madrid."]},
        count=24, lang="es", wrap=False),
    Family("extraction/fr2", [
        "Extrais {what} de ce texte : {t}", "Donne-moi {what} au format JSON : {t}",
    ], {"what": ["les noms et les numéros", "les dates", "les montants", "les adresses e-mail"],
        "t": ["Appelez Claire Petit au 06 11 22 33 44 avant le 5 juin.", "Facture 77 : total 120,50 €, échéance 30/04/2024.",
              "Écrivez à marc@exemple.fr ou à julie@societe.com.", "Rendez-vous le 14 mars au 12 rue de la Paix, Paris."]},
        count=20, lang="fr", wrap=False),
    Family("extraction/de2", [
        "Extrahiere {what} aus diesem Text: {t}", "Gib mir {what} als JSON: {t}",
    ], {"what": ["die Namen und Telefonnummern", "alle Daten", "die Beträge", "die E-Mail-Adressen"],
        "t": ["Ruf Jonas Weber unter 0171 2345678 bis zum 3. Mai an.", "Rechnung 55: Summe 89,90 €, fällig am 15.07.2024.",
              "Schreib an lena@beispiel.de oder info@firma.at.", "Treffen am Montag, 4. März, Hauptstraße 7, Berlin."]},
        count=20, lang="de", wrap=False),
    Family("extraction/pt-it", [
        "Extraia {what} deste texto: {t}", "Estrai {what2} da questo testo: {t}",
    ], {"what": ["os nomes e telefones", "as datas", "os valores"], "what2": ["i nomi", "le date", "gli importi"],
        "t": ["Ligue para Ana Souza no (11) 98765-4321 até 10/05.", "Fattura 9: totale 230,00 €, scadenza 31/03/2024."]},
        count=16, lang="other", wrap=False),
]

# Chinese and Japanese (the hasher reads them one character at a time)
CODE.append(Family("code/zh-ja", [
    "如何在{lang}中{zt}？", "我的{lang}代码报错：{err}，怎么解决？", "请用{lang}写一个函数来{zt}。",
    "{lang}で{jt}方法を教えてください。", "{lang}のコードで{err}が出ます。どう直せばいいですか？",
], {"lang": LANGS, "zt": ["读取CSV文件", "反转字符串", "排序一个列表", "连接数据库", "发送HTTP请求"],
    "jt": ["ファイルを読む", "文字列を反転する", "リストを並べ替える", "APIを呼び出す"],
    "err": ["NullPointerException", "IndexError", "TypeError", "segmentation fault"]}, count=20, lang="cjk", wrap=False))
MATH.append(Family("math/zh-ja", [
    "{a}乘以{b}等于多少？", "解方程 {eq}。", "半径为{a}的圆面积是多少？", "{n}的{p}%是多少？",
    "{a}かける{b}はいくつですか？", "方程式 {eq} を解いてください。", "{n}の{p}パーセントは？",
], {"a": _int(2, 99), "b": _int(2, 99), "n": _int(50, 900), "p": _int(5, 60), "eq": _eq}, count=20, lang="cjk", wrap=False))
REASONING.append(Family("reasoning/zh-ja", [
    "如果所有的{x}都是{y}，有些{y}是{z}，能推出有些{x}是{z}吗？", "我应该{o}？请帮我分析利弊。", "逻辑题：{p}",
    "すべての{x}が{y}なら、{y}でないものは{x}ですか？理由も教えてください。", "{jo}で迷っています。メリットとデメリットを考えてください。",
], {"x": ["猫", "医生", "学生"], "y": ["动物", "人", "会员"], "z": ["宠物", "跑步者", "画家"],
    "o": ["租房还是买房", "换工作还是留下", "读研究生还是工作"], "p": ["三个开关控制另一个房间的一盏灯，只能进去一次，怎么判断？"],
    "jo": ["転職するかどうか", "家を買うか借りるか"]}, count=16, lang="cjk", wrap=False))
WRITING.append(Family("writing/zh-ja", [
    "写一首关于{t}的诗。", "帮我写一封给{w}的邮件，内容是{c}。", "写一个关于{t}的短故事。",
    "{jt}についての詩を書いてください。", "{jw}へのお礼のメールを書いてください。", "{jt}についての短い物語を書いて。",
], {"t": ["春天", "大海", "故乡", "月亮"], "w": ["老板", "客户", "老师"], "c": ["请假", "道歉", "感谢"],
    "jt": ["桜", "海", "冬の朝", "猫"], "jw": ["先生", "上司", "友達"]}, count=20, lang="cjk", wrap=False))
CHAT.append(Family("chat/zh-ja", [
    "你好！", "今天天气怎么样？", "你喜欢什么电影？", "给我讲个笑话吧。", "谢谢你的帮助！", "晚安！", "推荐一本好书吧。",
    "おはようございます！", "おすすめの映画はありますか？", "ありがとう、助かりました！", "何か面白い話をして。", "おやすみなさい。",
], {}, count=14, lang="cjk", wrap=False))
EXTRACTION.append(Family("extraction/zh-ja", [
    "从下面的文字中提取{w}：{t}", "请把这段文字里的{w}整理成JSON：{t}", "次の文章から{jw}を抽出してください：{jt}",
], {"w": ["人名和电话", "日期", "金额"], "t": ["请在5月3日前联系王伟，电话13800138000。", "发票总额为356元，付款日期2024年6月1日。"],
    "jw": ["日付", "名前と電話番号", "金額"], "jt": ["山田さん（090-1234-5678）に3月5日までに連絡してください。", "請求額は12,000円、支払期限は4月30日です。"]},
    count=14, lang="cjk", wrap=False))
