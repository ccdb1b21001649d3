"""Intent of a request: chat, code, vision or system, in Portuguese, English, French and Spanish.

Rules, not a model: they are cheap (tens of microseconds), explainable, and the four classes
are separable by surface signals. Order matters: an image makes any request VISION; an internal
command is SYSTEM even when it mentions code; then code signals; everything else is CHAT.
"Code" alone is not enough ("code of conduct", "código penal"): it needs a writing/fixing verb,
real syntax, an error, or a programming-language name in a programming context.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from wilton_core.core.features import MessagesOrText, flatten_request, has_image

__all__ = [
    "INTENT_CAPABILITY",
    "PROVIDER_CHOICES",
    "Intent",
    "IntentDefaults",
    "ProviderChoice",
    "detect_intent",
    "intent_defaults_from_env",
]


class Intent(enum.StrEnum):
    CHAT = "chat"
    CODE = "code"
    VISION = "vision"
    SYSTEM = "system"


# The capability a model needs to serve the intent (config.Capability values).
INTENT_CAPABILITY: dict[Intent, str] = {
    Intent.CHAT: "basic",
    Intent.CODE: "standard",
    Intent.VISION: "standard",
    Intent.SYSTEM: "basic",
}

_F = re.IGNORECASE | re.UNICODE

# -- system ------------------------------------------------------------------------------------
_SLASH_COMMAND = re.compile(r"^\s*/[a-z][\w-]*(?:\s|$)", _F)
_BANG_COMMAND = re.compile(r"^\s*![a-z][\w-]*\b", _F)
_SYSTEM_PREFIX = re.compile(r"^\s*(?:system|sistema|système|systeme)\s*:", _F)
_CTL = re.compile(r"^\s*(?:wiltonctl|wilton-\w+|systemctl|supervisorctl)\b|\bwiltonctl\s+\w+", _F)
_SYS_NOUN = (
    r"(?:o |a |le |la |el |the |os |les |los |todo o |tout le )?"
    r"(?:sistema|system|système|systeme|stack|roteador|router|routeur|servidor|server|serveur|"
    r"serviços?|services?|servicios?|daemon|coerência|coherence|cohérence|exporter|gateway|wilton\w*)"
)
_SYS_VERB = (
    r"(?:reinici\w*|reinicializ\w*|restart\w*|reboot\w*|redémarr\w*|redemarr\w*|relanc\w*|"
    r"desligu\w*|deslig\w*|shut ?down|arrêt\w*|apag\w*|para|pare|stop|inici\w*|start|démarr\w*|"
    r"arranca\w*|recarreg\w*|reload|recharg\w*|recarg\w*|atualiz\w*|actualiz\w*|update|"
    r"mettre à jour|mets à jour)"
)
_SYS_ACTION = re.compile(rf"^\s*(?:please |por favor,? |s'il te plaît,? |svp,? )?{_SYS_VERB}\s+{_SYS_NOUN}\b", _F)
_SYS_STATUS = re.compile(
    r"\b(?:status|estado|état|etat|saúde|santé|salud|health)\s+(?:do|da|du|de la|del|de|of the|of)\s+"
    r"(?:sistema|system|système|systeme|stack|roteador|router|routeur|servidor|server|serveur|"
    r"cluster|modelos|models|modèles|wilton\w*)\b"
    r"|\bsystem (?:status|health)\b|^\s*(?:status|health ?check|healthz|uptime)\s*[?!.]?\s*$",
    _F,
)
_PHI_COMMAND = re.compile(
    r"^\s*(?:set|defina|ajuste|mude|règle|regle|change|fixe|establece|ajusta|cambia|get|mostre|"
    r"show|affiche|muestra)\s+(?:o |le |el |the )?(?:phi|φ|target|alvo|cible|objetivo)\b",
    _F,
)

# -- code --------------------------------------------------------------------------------------
# Keyword rules are set lookups over one tokenisation: regex alternations over a whole prompt
# cost tens of microseconds each. The few structural regexes only run behind a cheap `in` gate.


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Latin letters (with the accents of pt/fr/es) and digits; explicit ranges match ~2x faster than
# a negated Unicode class.
_TOKEN = re.compile(r"[0-9A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F]+(?:[+#]{1,2})?")
# Intent is stated at the start or the end of a long prompt; the middle is pasted material.
_SCAN_HEAD = 1000
_SCAN_TAIL = 500

_TRACE_SUBSTRINGS = (
    "traceback (most recent call last)", "segmentation fault", "core dumped", "stack trace",
    "stacktrace", "null pointer", "undefined is not", "panicked at", "errno", "exit code ",
    "exit status ", "compile error", "compilation error", "compiler error", "syntax error",
    "erro de compilação", "erreur de compilation", "error de compilación", "erro de sintaxe",
    "erreur de syntaxe", "error de sintaxis", "ponteiro nulo", "pointeur nul", "puntero nulo",
    "race condition", "condição de corrida", "condition de course", "condición de carrera",
    "memory leak", "vazamento de memória", "fuite mémoire", "fuite de mémoire", "off-by-one",
    "merge conflict", "pull request", "unit test", "teste unitário", "testes unitários",
    "test unitaire", "tests unitaires", "prueba unitaria", "pruebas unitarias", "time complexity",
    "complexidade de tempo", "complexité temporelle", "complejidad temporal", "linked list",
    "lista ligada", "liste chaînée", "lista enlazada", "binary search", "busca binária",
    "recherche binaire", "búsqueda binaria", "hash map", "hashmap", "hash table", "tabela hash",
    "table de hachage", "tabla hash", "sorting algorithm", "algoritmo de ordenação",
    "algorithme de tri", "algoritmo de ordenamiento", "bash script", "shell script",
    "stack overflow", "rest api", "api rest", "node.js", "vue.js", "react component",
    "react hook", "linux kernel", "console.log(", "print(", "#include", "public static",
)
# A phrase is only searched for when all its words are among the prompt's tokens.
_TRACE_PHRASES: tuple[tuple[frozenset[str], str], ...] = tuple(
    (frozenset(w.lower() for w in _TOKEN.findall(p)), p) for p in _TRACE_SUBSTRINGS
)
# The same phrases indexed by one of their words: a prompt only needs to test the phrases whose
# key word it contains (most prompts: none) instead of all of them (hot path, ~4 us saved).
_TRACE_BY_KEY: dict[str, tuple[tuple[frozenset[str], str], ...]] = {}
for _ws, _p in _TRACE_PHRASES:
    _key = min(_ws) if _ws else ""
    _TRACE_BY_KEY[_key] = (*_TRACE_BY_KEY.get(_key, ()), (_ws, _p))
_TRACE_ALWAYS = _TRACE_BY_KEY.pop("", ())
_TRACE_KEYS = frozenset(_TRACE_BY_KEY)
_ERROR_NAME = re.compile(r"\b[A-Z]\w*(?:Error|Exception)\b")
_GATED_SYNTAX: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("def ", re.compile(r"\bdef \w+\s*\(")),
    ("class ", re.compile(r"\bclass \w+\s*[:({]")),
    ("function", re.compile(r"\bfunction\s*\w*\s*\(")),
    ("import ", re.compile(r"^\s*import \w+(?:\.\w+)*\s*;?\s*$|\bfrom \w+(?:\.\w+)* import\b", re.M)),
    ("SELECT", re.compile(r"\bSELECT\b.+\bFROM\b", re.S)),
    ("=>", re.compile(r"=>\s*[{(\w]")),
    ("const ", re.compile(r"\bconst\s+\w+\s*=")),
    ("var ", re.compile(r"\bvar\s+\w+\s*=")),
    ("let ", re.compile(r"\blet\s+\w+\s*=[^=\n]*;")),
    ("fn ", re.compile(r"\bfn \w+\s*\(")),
    ("func ", re.compile(r"\bfunc \w+\s*\(")),
    ("{", re.compile(r"\)[ \t]*\{")),
    (");", re.compile(r"\w+\.\w+\([^()\n]*\)\s*;")),
    ("$", re.compile(r"\$\s*\w+ --?\w+")),
    ("<", re.compile(r"</?(?:div|span|html|body|script|head|template)\b")),
    ('File "', re.compile(r"\bFile \"[^\"]+\", line \d+")),
    (" at ", re.compile(r"^\s+at [\w.$<>]+\(.*:\d+\)", re.M)),
)
_SHELL_LINE = re.compile(
    r"^\s*(?:pip|npm|yarn|cargo|git|docker|kubectl|apt|apt-get|brew) "
    r"(?:install|run|build|commit|push|clone|apply|add|rebase|merge)\b",
    re.M,
)
_SHELL_TOOLS = _wordset("pip npm yarn cargo git docker kubectl apt brew")

_CODE_VERBS = _wordset(
    "write create make implement code build generate fix debug refactor optimize optimise review "
    "explain convert translate port escreva escrever escreve crie criar cria faça fazer faz "
    "implemente implementar implementa corrija corrigir corrige gere gerar gera depure depurar "
    "refatore refatorar otimize otimizar revise revisar explique explicar converta converter "
    "traduza traduzir écris écrire écrivez ecris ecrire crée créer créez cree creer fais faire "
    "faites génère générer générez genere implémente implémenter implémentez débogue déboguer "
    "deboguer optimise optimiser optimisez corrigez explique expliquer expliquez convertis "
    "convertir traduis traduire escribe escribir escriba crea crear haz hacer genera generar "
    "implementa implemente optimiza optimizar depura explica explicar convierte convertir traduce "
    "traducir programa programar programe programme programmer"
)
_CODE_NOUNS = _wordset(
    "function functions code script scripts program programs class classes method methods regex "
    "regexp query queries sql algorithm algorithms test tests api endpoint endpoints bug bugs "
    "dockerfile makefile snippet loop recursion função funcao funções funcoes código codigo "
    "programa classe método metodo consulta algoritmo teste testes fonction fonctions programme "
    "méthode methode requête requete algorithme boucle función funcion funciones clase bucle "
    "prueba pruebas"
)
_STRONG_LANGS = _wordset(
    "javascript typescript c++ c# f# golang kotlin php sql postgresql mysql sqlite html css numpy "
    "pandas django flask fastapi nodejs reactjs vuejs dockerfile jquery pytorch tensorflow matlab "
    "fortran cobol assembler powershell regex json yaml xml graphql asyncio pytest git github "
    "gitlab compilador compiler compilateur stackoverflow segfault webpack npm kubectl"
)
_WEAK_LANGS = _wordset(
    "python java rust ruby go swift perl scala haskell bash shell c r lua elixir julia dart "
    "clojure erlang ocaml lisp scheme prolog zig nim"
)
# Names that are also everyday words need a capital and a preposition ("em Go", "in R").
_AMBIGUOUS_LANGS = _wordset("go c r ruby shell swift scheme julia dart rust")
_LANG_PREPOSITIONS = _wordset("in em en no na com with avec con de do du del")
_PROG_CONTEXT = _wordset(
    "code coding program programs programming programmer programa programas programação "
    "programacao programmation programación function functions script scripts compile compiler "
    "compiling compilation install installing installed library libraries package packages module "
    "modules variable variables array arrays list lists dict dictionary loop bug bugs error errors "
    "erro erros erreur erreurs exception exceptions syntax runtime interpreter debug debugging "
    "import string strings integer int float class classes method methods object objects thread "
    "threads async lambda regex api framework biblioteca bibliothèque librería libreria função "
    "funcao fonction función funcion código codigo programme laço boucle bucle lista liste "
    "closure closures decorator decorators generator generators iterator iterators pointer "
    "pointers ponteiro pointeur puntero crate gem pip test tests teste testes prueba pruebas "
    "write escreva escribe écris vs versus version versão versión script"
)
_NOT_SOFTWARE_CODE = re.compile(
    r"\b(?:code|codes|código|codigo|códigos) (?:of conduct|of ethics|of honou?r|de conduta|de conduite|"
    r"de conducta|de la route|da estrada|de trânsito|de tránsito|de circulación|civil|pénal|penal|"
    r"postal|de vestimenta|vestimentaire|de vestir|napoléon|tributário|du travail|do trabalho)"
    r"|\b(?:zip|post|postal|dress|area|country|promo|discount|qr|bar|morse|secret|da vinci) ?codes?\b",
    _F,
)
_CODE_WORDS_FOR_NEGATION = _wordset("code codes código codigo códigos")


def _code_request(low: list[str]) -> bool:
    """A writing/fixing verb followed within six words by a code noun."""
    last_verb = -100
    for i, w in enumerate(low):
        if w in _CODE_NOUNS and i - last_verb <= 6:
            return True
        if w in _CODE_VERBS:
            last_verb = i
    return False


def _weak_language(words: list[str], low: list[str], vocab: frozenset[str]) -> bool:
    verb_seen = False
    for i, (w, lw) in enumerate(zip(words, low, strict=True)):
        if lw in _CODE_VERBS:
            verb_seen = True
        if lw not in _WEAK_LANGS:
            continue
        after_prep = i > 0 and low[i - 1] in _LANG_PREPOSITIONS and w[0].isupper()
        if verb_seen and after_prep:
            return True  # "implement quicksort in Rust", "uma pilha em Go"
        if lw in _AMBIGUOUS_LANGS and not after_prep:
            continue
        if not vocab.isdisjoint(_PROG_CONTEXT):
            return True
    return False


def _is_code(text: str) -> bool:
    if "```" in text or "~~~" in text:
        return True
    t = text if len(text) <= _SCAN_HEAD + _SCAN_TAIL else text[:_SCAN_HEAD] + "\n" + text[-_SCAN_TAIL:]
    if ("Error" in t or "Exception" in t) and _ERROR_NAME.search(t):
        return True
    for gate, pattern in _GATED_SYNTAX:
        if gate in t and pattern.search(t):
            return True
    words = _TOKEN.findall(t)
    low = " ".join(words).lower().split()
    vocab = frozenset(low)
    if not vocab.isdisjoint(_SHELL_TOOLS) and _SHELL_LINE.search(t):
        return True
    t_low = t.lower()
    if any(s in t_low for _, s in _TRACE_ALWAYS):
        return True
    for key in _TRACE_KEYS.intersection(vocab):
        if any(ws <= vocab and s in t_low for ws, s in _TRACE_BY_KEY[key]):
            return True
    if not vocab.isdisjoint(_CODE_WORDS_FOR_NEGATION) and _NOT_SOFTWARE_CODE.search(t):
        t = _NOT_SOFTWARE_CODE.sub(" ", t)
        words = _TOKEN.findall(t)
        low = " ".join(words).lower().split()
        vocab = frozenset(low)
    if not vocab.isdisjoint(_STRONG_LANGS):
        return True
    if not vocab.isdisjoint(_CODE_NOUNS) and _code_request(low):
        return True
    return not vocab.isdisjoint(_WEAK_LANGS) and _weak_language(words, low, vocab)


_STATUS_WORDS = _wordset("status estado état etat saúde santé salud health healthz uptime healthcheck")


def _is_system(text: str) -> bool:
    head = text[:400]
    low = head.lower()
    return bool(
        _SLASH_COMMAND.search(head)
        or _BANG_COMMAND.search(head)
        or _SYSTEM_PREFIX.search(head)
        or (("ctl" in low or "wilton" in low) and _CTL.search(head))
        or _SYS_ACTION.search(head)
        or (not _STATUS_WORDS.isdisjoint(_TOKEN.findall(low)) and _SYS_STATUS.search(head))
        or _PHI_COMMAND.search(head)
    )


def detect_intent(messages_or_text: MessagesOrText) -> Intent:
    """Classify a request (a string or an OpenAI `messages` list). Pure and fast.

    Only the last user turn decides for message lists, because earlier turns describe what was
    already answered; images anywhere in the conversation still make it VISION.
    """
    if has_image(messages_or_text):
        return Intent.VISION
    text = _last_user_text(messages_or_text)
    if _is_system(text):
        return Intent.SYSTEM
    if _is_code(text):
        return Intent.CODE
    return Intent.CHAT


def _last_user_text(messages_or_text: MessagesOrText) -> str:
    if isinstance(messages_or_text, str):
        return messages_or_text
    for message in reversed(messages_or_text):
        if isinstance(message, Mapping) and message.get("role", "user") == "user":
            return flatten_request([message])
    return flatten_request(messages_or_text)


# -- per-intent defaults from the seed's environment -------------------------------------------

ProviderChoice = Literal["local", "gemini", "openai", "groq", "anthropic", "auto"]
PROVIDER_CHOICES: tuple[ProviderChoice, ...] = ("local", "gemini", "openai", "groq", "anthropic", "auto")


@dataclass(frozen=True, slots=True)
class IntentDefaults:
    """Per-intent provider preference and local model names (seed 000's CHAT_PROVIDER etc.).

    `invalid` lists env entries that were set to an unknown provider and therefore ignored
    (reported, not raised, so a typo degrades to "auto" instead of stopping the router).
    """

    chat_provider: ProviderChoice = "auto"
    code_provider: ProviderChoice = "auto"
    vision_provider: ProviderChoice = "auto"
    chat_local_model: str | None = None
    code_local_model: str | None = None
    vision_local_model: str | None = None
    invalid: tuple[str, ...] = ()

    def provider_for(self, intent: Intent) -> ProviderChoice:
        if intent is Intent.CODE:
            return self.code_provider
        if intent is Intent.VISION:
            return self.vision_provider
        return self.chat_provider

    def local_model_for(self, intent: Intent) -> str | None:
        if intent is Intent.CODE:
            return self.code_local_model
        if intent is Intent.VISION:
            return self.vision_local_model
        return self.chat_local_model


def intent_defaults_from_env(environ: Mapping[str, str] | None = None) -> IntentDefaults:
    """Read CHAT/CODE/VISION_PROVIDER and CHAT/CODE/VISION_LOCAL_MODEL (os.environ by default)."""
    env = os.environ if environ is None else environ
    invalid: list[str] = []
    providers: dict[str, ProviderChoice] = {}
    for name in ("CHAT", "CODE", "VISION"):
        key = f"{name}_PROVIDER"
        raw = env.get(key, "").strip().lower()
        if not raw:
            providers[name] = "auto"
        elif raw in PROVIDER_CHOICES:
            providers[name] = raw
        else:
            invalid.append(key)
            providers[name] = "auto"

    def model(key: str) -> str | None:
        value = env.get(key, "").strip()
        return value or None

    return IntentDefaults(
        chat_provider=providers["CHAT"],
        code_provider=providers["CODE"],
        vision_provider=providers["VISION"],
        chat_local_model=model("CHAT_LOCAL_MODEL"),
        code_local_model=model("CODE_LOCAL_MODEL"),
        vision_local_model=model("VISION_LOCAL_MODEL"),
        invalid=tuple(invalid),
    )
