"""Intent of a request: chat, code, vision or system, in Portuguese, English, French and Spanish.

Rules, not a model: they are cheap (tens of microseconds), explainable, and the four classes
are separable by surface signals. Order matters: an image makes any request VISION; an explicit
internal command (`/status`, `wiltonctl ...`, "restart the router") is SYSTEM even when it
mentions code; then code signals; then a natural-language command to the assistant about its
own state ("Limpe a memória da conversa", "Switch the voice to female") is SYSTEM; everything
else is CHAT.
"Code" alone is not enough ("code of conduct", "código penal"): it needs a writing/fixing verb,
real syntax, an error, or a programming-language name in a programming context.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

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
    "gitlab compilador compiler compilateur stackoverflow segfault webpack npm kubectl simd avx cuda "
    "opencl llvm gcc clang rustc wasm webassembly"
)
_WEAK_LANGS = _wordset(
    "python java rust ruby go swift perl scala haskell bash shell c r lua elixir julia dart "
    "clojure erlang ocaml lisp scheme prolog zig nim"
)
# Names that are also everyday words need a capital and a preposition ("em Go", "in R").
_AMBIGUOUS_LANGS = _wordset("go c r ruby shell swift scheme julia dart rust")
_ARTICLES = _wordset("a an the um uma un une el la le")
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
        if w[0].isupper() and i >= 1 and (low[i - 1] in _CODE_VERBS or (
                i >= 2 and low[i - 2] in _CODE_VERBS and low[i - 1] in _ARTICLES)):
            return True  # "write a Rust version", "escreva um Go ..."
        if lw in _AMBIGUOUS_LANGS and not after_prep:
            continue
        if not vocab.isdisjoint(_PROG_CONTEXT):
            return True
    return False


class _Tokens(NamedTuple):
    """One tokenisation of the scanned text (head and tail), shared by the rules below."""

    t: str                 # the scanned text
    words: list[str]       # its tokens as written
    low: list[str]         # the same tokens lower-cased (aligned with `words`)
    vocab: frozenset[str]


def _tokens(text: str) -> _Tokens:
    t = text if len(text) <= _SCAN_HEAD + _SCAN_TAIL else text[:_SCAN_HEAD] + "\n" + text[-_SCAN_TAIL:]
    words = _TOKEN.findall(t)
    low = " ".join(words).lower().split()
    return _Tokens(t, words, low, frozenset(low))


def _is_code(text: str, tok: _Tokens) -> bool:
    if "```" in text or "~~~" in text:
        return True
    t = tok.t
    if ("Error" in t or "Exception" in t) and _ERROR_NAME.search(t):
        return True
    for gate, pattern in _GATED_SYNTAX:
        if gate in t and pattern.search(t):
            return True
    words, low, vocab = tok.words, tok.low, tok.vocab
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


# -- natural-language commands to the assistant ------------------------------------------------
# "Limpe a memória da conversa", "Switch the voice to female", "Réinitialise la conversation":
# an imperative (after optional politeness or "can you"/"I want to") at the start of a short
# request, whose object within a few words is the assistant's own state (conversation, voice,
# model, service, settings). Questions about how to do it ("how do I clear the cache") and
# objects that belong to something else ("the memory *of* my grandmother", "the passive voice")
# stay chat. Only the first words of short requests are read: commands are short.
_CMD_MAX_CHARS = 160
_CMD_WINDOW = 5  # words after the verb in which the object must appear
_CMD_PREFIX = _wordset(
    "please pls hey ok okay now então entao agora por favor porfavor s il te plaît plait svp vous "
    "stp maintenant alors ahora bueno oye hola luna wilton assistant assistente assistente"
)
# "can you" / "I want to" in four languages: the next word must be the command verb.
_CMD_MODAL = _wordset(
    "can could would will pode podes poderia podia você voce vc consegue peux pouvez pourrais "
    "pourriez puedes podrías podrias puede podría podria you i want to d like quero queria gostaria de "
    "je veux voudrais aimerais tu quiero quisiera me gustaría gustaria let s lets vamos"
)
_CMD_VERBS = _wordset(
    # en
    "clear reset restart reboot stop start reload switch change set use turn enable disable "
    "activate deactivate mute unmute forget erase delete wipe show list load unload pull download "
    "update upgrade select pick toggle increase decrease lower raise put make speak talk begin "
    "open "
    # pt
    " limpe limpa limpar apague apaga apagar reinicie reinicia reiniciar reinicialize pare parar "
    "inicie iniciar inicia mude muda mudar troque troca trocar altere altera alterar defina define "
    "definir use usa usar ative ativa ativar desative desativa desativar ligue liga ligar desligue "
    "desliga desligar esqueça esqueca esquece esquecer mostre mostra mostrar liste listar carregue "
    "carrega carregar descarregue descarregar baixe baixa baixar atualize atualizar selecione "
    "selecionar coloque coloca colocar ponha aumente aumentar diminua diminuir comece começa "
    "começar comecar recarregue recarrega recarregar zere zera zerar resete reseta resetar "
    "silencie silenciar fale falar abra abrir "
    # fr
    "efface effacez effacer vide videz vider réinitialise réinitialisez réinitialiser reinitialise "
    "reinitialiser redémarre redémarrez redémarrer redemarre redemarrer arrête arrêtez arrêter "
    "arrete arreter démarre démarrez démarrer demarre lance lancez lancer relance relancez relancer "
    "change changez changer passe passez passer mets mettez mettre règle réglez régler regle "
    "utilise utilisez utiliser active activez activer désactive désactivez désactiver desactive "
    "oublie oubliez oublier affiche affichez afficher liste listez lister charge chargez charger "
    "décharge décharger télécharge téléchargez télécharger recharge rechargez recharger "
    "sélectionne choisis choisissez coupe coupez couper augmente augmentez baisse baissez commence "
    "commencez commencer recommence recommencer supprime supprimez supprimer parle parlez parler "
    "ouvre ouvrir "
    # es
    "borra borre borrar limpia limpie limpiar reinicia reinicie reiniciar detén deten detenga "
    "detener para pare inicia inicie arranca arrancar cambia cambie cambiar pon ponga poner usa "
    "use usar activa active activar desactiva desactive desactivar olvida olvide olvidar muestra "
    "muestre mostrar lista enumera carga cargue cargar descarga descargue descargar actualiza "
    "actualizar selecciona seleccionar elige elegir silencia silenciar sube subir baja bajar "
    "aumenta aumentar disminuye disminuir empieza empezar comienza comenzar recarga recargar "
    "elimina eliminar resetea resetear apaga apagar enciende encender habla hablar abre "
)
# The assistant's own state. Checked within _CMD_WINDOW words of the verb.
_CMD_OBJECTS = _wordset(
    "conversation conversations conversa conversas conversación conversacion chat chats history "
    "histórico historico historial historique memory memória memoria mémoire memoire context "
    "contexto contexte session sessão sessao sesión sesion cache caché "
    "voice voz voix tts speech fala parole "
    "model models modelo modelos modèle modèles modele modeles llm "
    "service services serviço servico serviços servicos servicio servicios server servidor serveur "
    "daemon ollama llama vllm gemini claude gpt openai groq qwen mistral dolphin deepseek phi3 "
    "llava minicpm "
    "temperature temperatura température temperature tokens "
    "configuration config configuração configuracao configurações configuracoes configuración "
    "settings setting paramètres parametres ajustes definições preferences preferências "
    "mode modo debug depuração depuracao débogage debogage depuración verbose "
    "capture captura prompts logs log "
    "language idioma langue língua lingua assistant assistente asistente "
)
# Objects that make a command only with these verbs ("speak slower", "nova conversa").
_CMD_SPEECH_VERBS = _wordset("speak talk fale falar parle parlez parler habla hablar")
_CMD_SPEECH_ADVERBS = _wordset(
    "slower faster slowly louder quieter devagar rápido rapido lentamente alto baixo lentement "
    "vite fort doucement despacio rápido deprisa"
)
_CMD_NEW_CHAT = re.compile(
    r"^\s*(?:(?:a |an? )?new (?:chat|conversation|session)|(?:uma )?nova (?:conversa|sessão|sessao)|"
    r"(?:une )?nouvelle (?:conversation|session)|(?:una )?nueva (?:conversación|conversacion|sesión|sesion)|"
    r"start over|recomeçar|recomecar|on recommence|empecemos de nuevo)\b[\s\w,!.]*$",
    _F,
)
# An object "of" something else is not the assistant's: "the memory of my grandmother". An
# object word followed by of/de/da... is only kept when the next word is itself an object
# ("a memória da conversa", "el modelo de chat").
_CMD_FORGET = _wordset("forget esqueça esqueca esquece esquecer oublie oubliez oublier olvida olvide olvidar")
_CMD_FORGET_OBJECTS = _wordset("everything all what tudo o ce tout tout lo todo our nossa notre nuestra")
_CMD_OF = _wordset("of da do das dos de du des del")
_CMD_HOW = _wordset("how como cómo comment why por porque pourquoi qué que what which qual quel quelle cuál cual")
_VOICE_WORDS = _wordset("voice voz voix")
_CMD_GRAMMAR = _wordset("passive passiva passivo passive pasiva active ativa activa")


def _command_object(tokens: list[str], start: int) -> bool:
    end = min(len(tokens), start + _CMD_WINDOW)
    for i in range(start, end):
        w = tokens[i]
        if w in _VOICE_WORDS and ((i > 0 and tokens[i - 1] in _CMD_GRAMMAR)
                                  or (i + 1 < len(tokens) and tokens[i + 1] in _CMD_GRAMMAR)):
            return False  # "the passive voice", "la voix passive": grammar, not the speech output
        if w in _CMD_OF:
            return False  # "make a list of female voice actors": the object belongs to another noun
        if w not in _CMD_OBJECTS:
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if nxt in _CMD_OF:
            after = tokens[i + 2 : i + 4]
            if not any(a in _CMD_OBJECTS or a in _CODE_NOUNS or a in ("código", "codigo", "code", "visão",
                                                                         "visao", "vision", "visión")
                       for a in after):
                return False
        return True
    return False


def _is_nl_command(text: str, tok: _Tokens) -> bool:
    if len(text) > _CMD_MAX_CHARS:
        return False
    if _CMD_NEW_CHAT.search(text):
        return True
    tokens = tok.low  # a short text is scanned whole
    i = 0
    while i < len(tokens) and tokens[i] in _CMD_PREFIX:
        i += 1
    j = i
    while j < len(tokens) and j - i < 5 and tokens[j] in _CMD_MODAL:
        j += 1
    if j > i and j < len(tokens) and tokens[j] in _CMD_PREFIX:
        j += 1
    if j >= len(tokens) or tokens[j] not in _CMD_VERBS:
        return False
    rest = tokens[j + 1 :]
    if tokens[j] in _CMD_FORGET:  # "forget what I told you", "esquece o que eu disse", "olvida todo"
        return not _CMD_FORGET_OBJECTS.isdisjoint(rest[:2])
    if not _CMD_HOW.isdisjoint(rest[:3]):
        return False  # "show me how to clear the cache", "para que serve o modelo"
    if tokens[j] in _CMD_SPEECH_VERBS:
        return not _CMD_SPEECH_ADVERBS.isdisjoint(rest[:3])
    return _command_object(tokens, j + 1)


_STATUS_WORDS = _wordset("status estado état etat saúde santé salud health healthz uptime healthcheck")


def _is_system(text: str, tok: _Tokens) -> bool:
    head = text[:400]
    low = head.lower()
    return bool(
        _SLASH_COMMAND.search(head)
        or _BANG_COMMAND.search(head)
        or _SYSTEM_PREFIX.search(head)
        or (("ctl" in low or "wilton" in low) and _CTL.search(head))
        or _SYS_ACTION.search(head)
        # a gate only (the regex decides): the scanned tokens include the head's
        or (not _STATUS_WORDS.isdisjoint(tok.vocab) and _SYS_STATUS.search(head))
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
    tok = _tokens(text)  # one tokenisation for the three rules
    if _is_system(text, tok):
        return Intent.SYSTEM
    if _is_code(text, tok):
        return Intent.CODE
    # After code: "set the temperature parameter in my PyTorch code" is about the user's code.
    if _is_nl_command(text, tok):
        return Intent.SYSTEM
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
