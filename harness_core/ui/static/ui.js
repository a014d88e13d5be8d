// The inspector's few behaviours: live rows (server-sent events), replay, copy as curl.
// Every value is set with textContent, never parsed as HTML: callbacks are untrusted.
"use strict";

function token() {
  var meta = document.querySelector('meta[name="ui-token"]');
  return meta ? meta.getAttribute("content") : "";
}

function fillRow(li, row) {
  li.dataset.id = row.id;
  li.querySelector(".ts").textContent = row.ts;
  var link = li.querySelector(".cid");
  link.textContent = row.conversation_id;
  link.setAttribute("href", "/conversations/" + encodeURIComponent(row.conversation_id));
  li.querySelector(".type").textContent = row.event_type;
  li.querySelector(".detail").textContent = row.detail;
  li.querySelector(".replay").dataset.id = row.id;
  li.querySelector(".curl").textContent = row.curl;
  li.querySelector(".json").textContent = row.json;
  return li;
}

function startLive() {
  var status = document.getElementById("live-status");
  var list = document.getElementById("events");
  var template = document.getElementById("event-row");
  if (!status || !status.dataset.stream || !window.EventSource) return;
  var url = status.dataset.stream + (status.dataset.stream.indexOf("?") < 0 ? "?" : "&") + "after=" + status.dataset.after;
  var source = new EventSource(url);
  source.onopen = function () {
    status.textContent = "live: new events appear at the top as they arrive";
    document.body.dataset.live = "open";
  };
  source.onerror = function () {
    status.textContent = source.readyState === EventSource.CLOSED ? "live updates stopped (reload to resume)" : "live: reconnecting…";
    document.body.dataset.live = source.readyState === EventSource.CLOSED ? "closed" : "reconnecting";
  };
  source.addEventListener("callback", function (message) {
    var row = JSON.parse(message.data);
    if (list.querySelector('li.event[data-id="' + row.id + '"]')) return;
    var empty = document.getElementById("no-events");
    if (empty) empty.remove();
    var li = template.content.firstElementChild.cloneNode(true);
    list.insertBefore(fillRow(li, row), list.firstChild);
    li.classList.add("new");
  });
}

function replay(button) {
  var result = button.parentNode.querySelector(".result");
  var target = document.getElementById("replay-url");
  var body = new URLSearchParams({event_id: button.dataset.id, url: target ? target.value : "", token: token()});
  result.textContent = "sending…";
  fetch("/replay", {method: "POST", body: body, credentials: "same-origin"})
    .then(function (resp) { return resp.json().then(function (data) { return [resp.status, data]; }); })
    .then(function (answer) {
      var data = answer[1];
      result.textContent = answer[0] === 200 ? "sent to " + data.url + ": answered " + data.status + " " + data.body
                                             : "refused (" + answer[0] + "): " + data.error;
      result.className = "result " + (answer[0] === 200 && data.status < 300 ? "ok" : "bad");
    })
    .catch(function (err) { result.textContent = "failed: " + err; result.className = "result bad"; });
}

function copyCurl(button) {
  var text = button.closest("details").querySelector(".curl").textContent;
  var result = button.parentNode.querySelector(".result");
  var done = function () { result.textContent = "copied (secrets redacted)"; };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(done, function () { result.textContent = "select the command below and copy it"; });
  } else {
    result.textContent = "select the command below and copy it";
  }
}

document.addEventListener("click", function (event) {
  var button = event.target.closest("button");
  if (!button) return;
  if (button.classList.contains("replay")) replay(button);
  if (button.classList.contains("copy")) copyCurl(button);
});

document.addEventListener("DOMContentLoaded", startLive);
