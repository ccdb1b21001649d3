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
_FENCE = re.compile(r"```|~~~")
_TRACE = re.compile(
    r"Traceback \(most recent call last\)|\bFile \"[^\"]+\", line \d+|^\s+at [\w.$<>]+\(.*:\d+\)"
    r"|\b[A-Z][a-z]+(?:[A-Z][a-z]*)*(?:Error|Exception)\b|\bsegmentation fault\b"
    r"|\bcore dumped\b|\bstack ?trace\b|\bnull ?pointer\b|\bundefined is not\b|\bpanicked at\b"
    r"|\bexit (?:code|status) \d+|\berrno\b|\bSyntaxError\b|\bcompil\w* (?:error|erro|erreur)"
    r"|\b(?:erro|erreur|error) (?:de )?(?:compilação|compilation|compilación|sintaxe|syntaxe|sintaxis)",
    _F | re.M,
)
_SYNTAX = re.compile(
    r"\bdef \w+\s*\(|\bclass \w+\s*[:({]|\bfunction\s*\w*\s*\(|#include\s*<|\bimport \w+(?:\.\w+)*\s*$"
    r"|\bfrom \w+(?:\.\w+)* import\b|\bconsole\.log\(|\bprint\(|\bSELECT\b.+\bFROM\b|=>\s*[{(]"
    r"|\b(?:const|let|var)\s+\w+\s*=|\bpublic static\b|\bfn \w+\(|\bfunc \w+\(|\w+\([^()\n]*\)\s*\{"
    r"|^\s*(?:pip|npm|yarn|cargo|git|docker|kubectl|apt(?:-get)?|brew) (?:install|run|build|commit|push|clone|apply|add)\b"
    r"|\$\s*\w+ --?\w+|</?(?:div|span|html|body|script)\b|\w+\.\w+\([^()\n]*\)\s*;",
    re.M,
)
_CODE_VERB = (
    r"(?:write|create|make|implement|code|build|generate|fix|debug|refactor|optimi[sz]e|review|"
    r"explain|convert|translate|port|escrev\w*|escreva|crie|criar|faça|fazer|faz|implement\w*|"
    r"implément\w*|corrij\w*|corrig\w*|gere|gerar|depur\w*|refator\w*|otimiz\w*|revis\w*|expliqu\w*|convert\w*|"
    r"écri\w*|ecri\w*|crée|créer|cree|fais|faire|génère|générer|debogu\w*|débogu\w*|optimis\w*|"
    r"escrib\w*|crea|crear|haz|hacer|genera|generar|optimiz\w*|explica\w*|programa\w*|"
    r"traduz\w*|tradui\w*|traduc\w*)"
)
_CODE_NOUN = (
    r"(?:function|functions|code|script|program|programs|class|method|regex|regexp|regular expression|"
    r"query|sql|algorithm|unit tests?|tests? unitári\w*|tests? unitaires?|pruebas? unitarias?|api|endpoint|"
    r"bug|dockerfile|makefile|snippet|loop|recursion|"
    r"função|funcao|funções|código|codigo|programa|classe|método|metodo|consulta|algoritmo|"
    r"fonction|fonctions|programme|méthode|methode|requête|requete|algorithme|boucle|"
    r"función|funcion|clase|método|bucle|consulta sql)"
)
_CODE_REQUEST = re.compile(rf"\b{_CODE_VERB}\b(?:\W+\w+){{0,5}}?\W+{_CODE_NOUN}\b", _F)
_LANG_STRONG = re.compile(
    r"(?<![\w])(?:javascript|typescript|c\+\+|c#|golang|kotlin|php|sql|postgresql|mysql|sqlite|html|css|"
    r"numpy|pandas|django|flask|fastapi|node\.?js|react(?:js)?|vue\.?js|dockerfile|jquery|pytorch|"
    r"tensorflow|matlab|fortran|cobol|assembly|assembler|powershell|bash script|shell script|"
    r"regex|json|yaml|xml|graphql|asyncio|pytest|git|github|gitlab|compilador|compiler|compilateur|"
    r"stack overflow|stackoverflow|linux kernel|api rest|rest api|segfault)(?![\w])",
    _F,
)
_LANG_WEAK = re.compile(
    r"\b(?:python|java|rust|ruby|go|swift|perl|scala|haskell|bash|shell|c|r|lua|elixir|julia|dart|"
    r"clojure|erlang|ocaml|lisp|scheme|prolog|zig|nim)\b",
    _F,
)
_PROG_CONTEXT = re.compile(
    r"\b(?:code|coding|program\w*|function\w*|script\w*|compil\w*|install\w*|library|libraries|"
    r"package|module|variable\w*|array\w*|list\w*|dict\w*|loop|bug\w*|error|erro|erreur|"
    r"exception|syntax\w*|sintax\w*|runtime|interpreter|debug\w*|import\w*|string\w*|integer|"
    r"int|float|class\w*|method\w*|objet\w*|object\w*|thread\w*|async|lambda|regex|api|"
    r"framework|biblioteca|bibliothèque|librería|função|funcao|fonction|función|funcion|"
    r"código|codigo|programa\w*|programme\w*|laço|boucle|bucle|lista|liste|tipagem|typage|"
    r"tipado|closure|decorator\w*|generator\w*|iterator\w*|pointer\w*|ponteiro\w*|pointeur\w*|puntero\w*|"
    r"memory leak|vazamento de memória|fuite mémoire|version|versão|versión|crate|gem|pip|"
    r"performance|benchmark|test\w*|teste\w*|prueba\w*|write|escreva|escribe|écris|script|"
    r"vs\.?|versus)\b",
    _F,
)
_CODE_TERMS = re.compile(
    r"\b(?:stack trace|segfault|null pointer|ponteiro nulo|pointeur nul|puntero nulo|race condition|deadlock|memory leak|off-by-one|"
    r"merge conflict|pull request|git rebase|unit test|teste unitário|test unitaire|prueba unitaria|"
    r"big-?o|time complexity|complexidade de tempo|complexité temporelle|complejidad temporal|"
    r"linked list|lista ligada|liste chaînée|lista enlazada|binary search|busca binária|"
    r"recherche binaire|búsqueda binaria|hash ?map|hash table|tabela hash|table de hachage|"
    r"tabla hash|sorting algorithm|algoritmo de ordenação|algorithme de tri|algoritmo de ordenamiento)\b",
    _F,
)

# Everyday phrases where "code" is not software; blanked out before the code rules run.
_NOT_SOFTWARE_CODE = re.compile(
    r"\b(?:code|codes|código|codigo|códigos) (?:of conduct|of ethics|of honou?r|de conduta|de conduite|"
    r"de conducta|de la route|da estrada|de trânsito|de tránsito|de circulación|civil|pénal|penal|"
    r"postal|de vestimenta|vestimentaire|de vestir|napoléon|tributário|du travail|do trabalho)"
    r"|\b(?:zip|post|postal|dress|area|country|promo|discount|qr|bar|morse|secret|da vinci) ?codes?\b",
    _F,
)
_WEAK_LANG_REQUEST = re.compile(rf"\b(?i:{_CODE_VERB})\b(?:\W+\w+){{0,6}}?\W+(?:in|em|en|no|na|com|with|avec|con)\s+"
                                r"(?:Python|Java|Rust|Ruby|Go|Swift|Perl|Scala|Haskell|Bash|C|R|Lua|Elixir|Julia|"
                                r"Dart|Clojure|Erlang|OCaml|Lisp|Zig|Nim)\b")


def _is_system(text: str) -> bool:
    head = text[:400]
    return bool(
        _SLASH_COMMAND.search(head)
        or _BANG_COMMAND.search(head)
        or _SYSTEM_PREFIX.search(head)
        or _CTL.search(head)
        or _SYS_ACTION.search(head)
        or _SYS_STATUS.search(head)
        or _PHI_COMMAND.search(head)
    )


def _is_code(text: str) -> bool:
    text = _NOT_SOFTWARE_CODE.sub(" ", text)
    if _WEAK_LANG_REQUEST.search(text):
        return True
    if _FENCE.search(text) or _TRACE.search(text) or _SYNTAX.search(text) or _CODE_TERMS.search(text):
        return True
    if _CODE_REQUEST.search(text) or _LANG_STRONG.search(text):
        return True
    # Ambiguous names ("python" the snake, "go", "rust") count only in a programming context.
    return _LANG_WEAK.search(text) is not None and _PROG_CONTEXT.search(text) is not None and (
        _has_weak_lang_in_context(text)
    )


def _has_weak_lang_in_context(text: str) -> bool:
    # A single-letter or common-word name (c, r, go, shell) is only trusted when capitalised or
    # written like a language ("em Go", "in R", "en C"); longer names need only the context word.
    for m in _LANG_WEAK.finditer(text):
        name = m.group(0)
        if len(name) >= 4 and name.lower() not in {"ruby", "shell", "swift", "scheme", "julia"}:
            return True
        before = text[max(0, m.start() - 4) : m.start()].lower()
        if name[0].isupper() and before.strip() in {"em", "in", "en", "com", "with", "avec", "con", "de", "do"}:
            return True
    return False


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
