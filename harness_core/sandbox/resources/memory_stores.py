"""Memory stores (CONTRACT §2.7): `DELETE /v2/memory-stores/{memory_store_id}`, the one documented route.

A memory store is the free-form key a conversation names in `memory_stores`; Tavus creates it on
first use. The sandbox keeps no memories, only which stores exist: a store exists when a conversation
named it after it was last deleted (our choice, docs/sandbox.md), so a second DELETE is a 404.
"""
from __future__ import annotations

from ...store import utc_now
from ..http import Family, Reply, error


class MemoryStores(Family):
    """/v2/memory-stores/{id}."""

    def routes(self):
        yield "DELETE", r"/v2/memory-stores/(?P<name>[^/]+)", self.delete_store

    def exists(self, name: str) -> bool:
        """Named by a conversation created after the store's last deletion (caller holds the lock)."""
        deleted = self.sb.state.deleted_memory_stores.get(name, "")
        return any(name in (c.get("memory_stores") or []) and c.get("created_at", "") > deleted
                   for c in self.sb.state.conversations.values())

    def delete_store(self, req, name):
        with self.sb.state.lock:
            if not self.exists(name):
                raise error(404, f"Memory store not found: {name} (a store exists once a conversation names it "
                                 f"in memory_stores)")
            self.sb.state.deleted_memory_stores[name] = utc_now()
        self.sb.save()
        return Reply(204)
