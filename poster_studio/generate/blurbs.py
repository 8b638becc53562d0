"""Invented taglines, star names, billing blocks and release lines, drawn by seed.

Taglines come from a small phrase grammar per genre (`TAGLINES`: templates whose {slots} take one of a few
fitting fillers); names are a generic first name and a generic last name from the lists below (not the data's
people: the data has none, and no name here was taken from it); studios are invented compounds. Everything passes
the same blocklist as the titles (invent.blocked).
"""
from __future__ import annotations

import random
import re
from typing import Sequence

from .invent import blocked

TAGLINES: dict[str, list[str]] = {
    "Action_Adventure": [
        "{one}. {no}.", "The {stakes} just changed.", "Justice has a new {face}.", "This time it's personal.",
        "{out}. Never out of the fight.", "The countdown {begins}.", "Revenge {revenge}.",
        "Every hero has a {breaking}.", "No one gets left behind.", "The last line of defense.",
        "Some battles are won before they begin.", "Fight for {what}.",
    ],
    "Animation": [
        "The adventure of a lifetime {begins}.", "Big dreams come in small packages.",
        "{virtue} {virtue_does}.", "Who says {creatures} can't {do}?", "This {season}, {season_does}.",
        "Every {creature} has a story.", "A little courage goes a long way.", "Home is where the heart {home}.",
        "Friends come in all sizes.",
    ],
    "Comedy": [
        "{one_comedy}. {zero}.", "What could possibly go wrong?", "Growing up is {optional}.",
        "{thing} is complicated.", "Some {people} never learn.", "The {worst} {event} ever.",
        "They were never supposed to meet.", "Nobody said it would be easy. Or legal.", "Rules are made to be broken.",
        "It's not a phase. It's a lifestyle.", "One of them has to grow up.",
    ],
    "Documentary": [
        "The {untold} story of {subject}.", "What nobody wanted you to see.", "{years}. {one_doc}.",
        "The truth is {truth}.", "A film about {about}.", "Some stories are too important to forget.",
        "Everything you know is about to change.", "Seeing is believing.", "They lived it. Now you will see it.",
    ],
    "Drama": [
        "Every {family} has its {secrets}.", "The truth {truth_does}.", "Some choices {choices}.",
        "How far would you go for {what_drama}?", "A story of {about_drama}.", "Nothing stays buried forever.",
        "Sometimes the hardest thing is letting go.", "One summer changed everything.",
        "The past is never where you left it.", "Hope is a dangerous thing.",
    ],
    "Horror_Thriller": [
        "Some doors should never be opened.", "{nobody} is {alone}.", "The {night} {night_does}.",
        "Fear has a new name.", "You can't escape {escape}.", "Don't {dont}.", "Nobody gets out {alive}.",
        "Every {town} has a secret.", "It knows your name.", "Pray it doesn't find you.",
        "The dead don't stay quiet.", "Something is waiting in the {waiting}.",
    ],
    "Romance": [
        "Some {loves} last forever.", "{fate} {fate_does}.", "Two {hearts}. One {chance}.",
        "It started with a {start}.", "Love is never where you expect it.", "Every love story has a beginning.",
        "Some people are worth waiting for.", "One {night} can change everything.", "Follow your heart.",
        "Falling in love was the easy part.",
    ],
}
SLOTS: dict[str, list[str]] = {
    "one": ["One man", "One woman", "One mission", "One last job", "One chance"],
    "no": ["No way out", "No second chances", "No rules", "No mercy", "No turning back"],
    "stakes": ["rules", "stakes", "game"], "face": ["face", "name"],
    "out": ["Outgunned", "Outnumbered", "Out of time"],
    "begins": ["begins", "starts now", "is here"],
    "revenge": ["is coming", "never sleeps", "has a price"],
    "breaking": ["breaking point", "last stand", "price"],
    "what": ["what you love", "the ones left behind", "tomorrow", "freedom"],
    "virtue": ["Friendship", "Courage", "Imagination", "Kindness"],
    "virtue_does": ["is the greatest adventure", "knows no size", "has no limits", "changes everything"],
    "creatures": ["dragons", "robots", "monsters", "penguins", "little heroes"],
    "do": ["dance", "dream", "fly", "be friends", "save the day"],
    "season": ["summer", "winter", "holiday", "season"],
    "season_does": ["get ready to fly", "the fun goes wild", "everything changes", "the adventure begins"],
    "creature": ["hero", "monster", "robot", "toy", "dragon"],
    "home": ["is", "flies", "leads you"],
    "one_comedy": ["One wedding", "One weekend", "One road trip", "One little lie", "One bad idea"],
    "zero": ["Zero plan", "No idea", "Zero chance", "No clue"],
    "optional": ["optional", "overrated", "hard to do"],
    "thing": ["Family", "Love", "Work", "Friendship", "Dating"],
    "people": ["people", "families", "friends", "neighbors"],
    "worst": ["worst", "best", "weirdest", "longest"],
    "event": ["weekend", "vacation", "job", "idea", "wedding"],
    "untold": ["untold", "true", "real", "hidden"],
    "subject": ["a movement", "a city", "an obsession", "a generation", "a river", "the people who stayed"],
    "years": ["Ten years", "One year", "Five years", "Seven summers"],
    "one_doc": ["One camera", "One family", "One question", "One village"],
    "truth": ["stranger than fiction", "closer than you think", "harder to find"],
    "about": ["courage", "home", "change", "what we leave behind", "the sea", "work"],
    "family": ["family", "life", "heart", "town"],
    "secrets": ["secrets", "storms", "seasons"],
    "truth_does": ["will set you free", "has a price", "was never simple"],
    "choices": ["change everything", "last a lifetime", "can't be undone"],
    "what_drama": ["the ones you love", "the truth", "a second chance"],
    "about_drama": ["courage", "hope", "love and loss", "second chances", "forgiveness"],
    "nobody": ["Nobody", "No one", "She", "He"],
    "alone": ["ever alone", "safe here", "coming back"],
    "night": ["night", "dark", "house", "forest", "silence"],
    "night_does": ["remembers", "is hungry", "has eyes", "is watching"],
    "escape": ["the past", "your own shadow", "what you've done", "the night"],
    "dont": ["look back", "turn off the lights", "go into the woods", "answer the door", "make a sound"],
    "alive": ["alive", "the same"],
    "town": ["town", "house", "family"],
    "waiting": ["woods", "dark", "walls", "water", "basement"],
    "loves": ["loves", "hearts", "summers"],
    "fate": ["Love", "Fate", "The heart"],
    "fate_does": ["finds a way", "has its reasons", "never forgets"],
    "hearts": ["hearts", "strangers", "lives"],
    "chance": ["summer", "chance", "city", "night"],
    "start": ["letter", "song", "mistake", "goodbye"],
}
FIRST_NAMES = """Ada Adrian Aiko Alba Amara Anders Ana Arjun Astrid Aurelio Bea Bruno Camila Caspar Celia Dario Dina
Eamon Elif Elena Emil Esme Ezra Farah Felix Greta Hana Hugo Ilse Imani Ines Ivo Jonas Juno Kai Kamal Kenji Kira Lars
Leila Lena Leon Lior Luca Lucia Maeve Malik Mara Marek Marta Mateo Mika Nadia Naoko Nico Nina Noor Odile Omar Oskar
Paloma Petra Quinn Rafael Rhea Rosa Ruben Saskia Sefa Silas Sofia Tariq Tess Theo Tomas Una Vera Viktor Wren Yara
Yusuf Zara Zoltan""".split()
LAST_NAMES = """Abara Achterberg Almeida Arvidsson Baptiste Barros Bellweather Bergstrom Calloway Castellano Dalca
Delacroix Drummond Eberhardt Ekwueme Falkner Fairbanks Ferreira Galloway Gatti Haddad Halvorsen Hartigan Ibarra
Ilunga Jansen Kalani Karlsson Kowalczyk Lachance Lindqvist Lorenzini Madsen Marchetti Mbeki Moravec Nakamura
Navarro Nieminen Novak Okafor Oyelaran Pachauri Petrakis Quintero Ravelli Reyes Rosendahl Sadowski Salinas
Sandoval Sorensen Tamura Tavares Thorne Valdivia Varga Vasquez Wainwright Whitlock Yamada Zamora Zielinski""".split()
STUDIO_A = """North Red Harbor Silver Lantern Tall Pine Iron Kite Blue Hour Paper Moon Little Fox Granite Far Shore
Copper Beacon Wild Oak Lighthouse Quarry Hollow Reed""".split()
STUDIO_B = ["Pictures", "Films", "Studios", "Entertainment", "Film Company", "Productions"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
RELEASES = {
    "Action_Adventure": ["This summer", "Coming soon", "In theaters {date}", "Only in theaters", "{date}"],
    "Animation": ["This holiday season", "Coming soon", "This summer", "In theaters {date}"],
    "Comedy": ["Coming soon", "In theaters {date}", "This summer", "Only in theaters"],
    "Documentary": ["Coming soon", "In select theaters {date}", "Opens {date}"],
    "Drama": ["Coming soon", "In select theaters {date}", "This fall", "Opens {date}"],
    "Horror_Thriller": ["Coming soon", "This Halloween", "{date}", "In theaters {date}", "This October"],
    "Romance": ["This Valentine's Day", "Coming soon", "In theaters {date}", "This spring"],
}


def _fill(template: str, rng: random.Random) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: rng.choice(SLOTS[m.group(1)]), template)


def _checked(make, rng: random.Random, tries: int = 50) -> str:
    for _ in range(tries):
        text = make()
        if not blocked(text):
            return text
    return ""


def tagline(genres: Sequence[str], rng: random.Random) -> str:
    """A tagline in the first genre's voice (any genre: one drawn)."""
    genre = genres[0] if genres and genres[0] in TAGLINES else rng.choice(sorted(TAGLINES))
    return _checked(lambda: _fill(rng.choice(TAGLINES[genre]), rng), rng)


def name(rng: random.Random) -> str:
    return _checked(lambda: f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}", rng)


def names(rng: random.Random, n: int) -> tuple[str, ...]:
    """n different names."""
    out: list[str] = []
    while len(out) < n:
        candidate = name(rng)
        if candidate not in out:
            out.append(candidate)
    return tuple(out)


def studio(rng: random.Random) -> str:
    return f"{rng.choice(STUDIO_A)} {rng.choice(STUDIO_B)}"


def billing(rng: random.Random, stars: Sequence[str]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """A billing block in reading order with each unit's rank (0 = kept longest; see title.PosterText)."""
    director, writer, producer, composer, editor, dop, designer = names(rng, 7)
    same = rng.random() < 0.5  # written and directed by one person
    units = [(f"{studio(rng)} presents", 2), (f"a {director} film", 0), *((s, 1) for s in stars),
             (f"music by {composer}", 3), (f"edited by {editor}", 4), (f"production design {designer}", 5),
             (f"director of photography {dop}", 4), (f"produced by {producer}", 2)]
    if same:
        units.append((f"written and directed by {director}", 1))
    else:
        units += [(f"written by {writer}", 3), (f"directed by {director}", 1)]
    return tuple(u for u, _ in units), tuple(r for _, r in units)


def release(genres: Sequence[str], rng: random.Random) -> str:
    genre = genres[0] if genres and genres[0] in RELEASES else "Drama"
    date = f"{rng.choice(MONTHS)} {rng.randint(1, 28)}"
    return rng.choice(RELEASES[genre]).replace("{date}", date)
