"""Redis keys of the hand-off desk, all in one place.

Every key carries the hash tag ``{handoff}``, so the desk's Lua scripts (which touch several keys at once)
also work on Redis Cluster, where a script's keys must live in one slot.

    zabota:{handoff}:seq                          ticket number counter
    zabota:{handoff}:ticket:{id}                  the ticket (hash)
    zabota:{handoff}:ticket:{id}:context          the conversation snapshot taken at hand-off (list of JSON turns)
    zabota:{handoff}:ticket:{id}:notes            agents' internal notes (list of JSON)
    zabota:{handoff}:ticket:{id}:passed-over      agents a given ticket went back from unanswered (set of user ids)
    zabota:{handoff}:ticket:{id}:announcements    where a new ticket's Take buttons were sent (list of "chat:message")
    zabota:{handoff}:ticket:{id}:once:{name}      a notice already given for the ticket (expires when it may repeat)
    zabota:{handoff}:queue                        waiting tickets (sorted set; score orders priority, then wait)
    zabota:{handoff}:customer:{chat_id}           the customer's open ticket id
    zabota:{handoff}:customer:{chat_id}:history   the customer's earlier ticket ids (list, newest first)
    zabota:{handoff}:agents                       agents added by admins (set of user ids)
    zabota:{handoff}:supervisors                  supervisors added by admins (set of user ids)
    zabota:{handoff}:online                       agents on shift (hash: user id -> since)
    zabota:{handoff}:agent:{id}                   the agent's profile (hash: display name ...)
    zabota:{handoff}:agent:{id}:tickets           tickets the agent holds (set)
    zabota:{handoff}:agent:{id}:active            the ticket his plain messages go to
    zabota:{handoff}:relay:{chat_id}:{message_id} which ticket a relayed message belongs to (for replies)
    zabota:{handoff}:waits                        recent waiting times in seconds (list, newest first)
    zabota:{handoff}:stats                        tickets opened and closed, by outcome (hash of counters)
    zabota:{handoff}:outbox                       messages to relay (stream; consumer group "relay")
    zabota:{handoff}:enqueued:{source}            an outbox entry from this source was added (once per source, expires)
    zabota:{handoff}:sent:{entry_id}              a relayed outbox entry was delivered (guards against doubles)
    zabota:{handoff}:agent:{id}:kb-offer          the articles /kb last offered the agent, for his tap (JSON, 1 h)
    zabota:{handoff}:search:{stem}                closed tickets whose conversation has the stem (string: 4-byte ticket numbers)
    zabota:{handoff}:search-indexed               closed tickets already indexed for search (bitmap by number)
    zabota:{handoff}:board                        the supervisors' queue board (hash: message id, content, updated)
    zabota:{handoff}:monitor-lease                the process running the queue monitor (lease)
    zabota:{handoff}:relay-leader                 the process running the relay (lease)
"""

from __future__ import annotations

PREFIX = "zabota:{handoff}"
SEQUENCE = f"{PREFIX}:seq"
QUEUE = f"{PREFIX}:queue"
AGENTS = f"{PREFIX}:agents"
SUPERVISORS = f"{PREFIX}:supervisors"
ONLINE = f"{PREFIX}:online"
WAITS = f"{PREFIX}:waits"
STATS = f"{PREFIX}:stats"
OUTBOX = f"{PREFIX}:outbox"
MONITOR_LEASE = f"{PREFIX}:monitor-lease"
RELAY_LEADER = f"{PREFIX}:relay-leader"
SEARCH_INDEXED = f"{PREFIX}:search-indexed"
BOARD = f"{PREFIX}:board"
AGENT_PREFIX = f"{PREFIX}:agent:"  # + id (+ ":tickets", ":active"): for Lua scripts that find the agent themselves


def agent_kb_offer(agent_id: int) -> str:
    return f"{PREFIX}:agent:{agent_id}:kb-offer"


def ticket(ticket_id: str) -> str:
    return f"{PREFIX}:ticket:{ticket_id}"


def context(ticket_id: str) -> str:
    return f"{PREFIX}:ticket:{ticket_id}:context"


def notes(ticket_id: str) -> str:
    return f"{PREFIX}:ticket:{ticket_id}:notes"


def passed_over(ticket_id: str) -> str:
    return f"{PREFIX}:ticket:{ticket_id}:passed-over"


def announcements(ticket_id: str) -> str:
    return f"{PREFIX}:ticket:{ticket_id}:announcements"


def ticket_once(ticket_id: str, name: str) -> str:
    return f"{PREFIX}:ticket:{ticket_id}:once:{name}"


def enqueued(source: str) -> str:
    return f"{PREFIX}:enqueued:{source}"


def search_stem(stem: str) -> str:
    return f"{PREFIX}:search:{stem}"


def customer(chat_id: int) -> str:
    return f"{PREFIX}:customer:{chat_id}"


def customer_history(chat_id: int) -> str:
    return f"{PREFIX}:customer:{chat_id}:history"


def agent(agent_id: int) -> str:
    return f"{PREFIX}:agent:{agent_id}"


def agent_tickets(agent_id: int) -> str:
    return f"{AGENT_PREFIX}{agent_id}:tickets"


def agent_active(agent_id: int) -> str:
    return f"{AGENT_PREFIX}{agent_id}:active"


def relay(chat_id: int, message_id: int) -> str:
    return f"{PREFIX}:relay:{chat_id}:{message_id}"


def sent(entry_id: str) -> str:
    return f"{PREFIX}:sent:{entry_id}"
