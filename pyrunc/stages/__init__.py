"""The stages the runtime forks and drives over a typed, length-checked
protocol (docs/stage-protocol.md): ``protocol`` (the messages), ``jobs``
(what a stage is given), ``init`` (create's intermediate and init),
``exec`` (the process ``exec`` starts in a running container)."""
