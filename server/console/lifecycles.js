"use strict";
// A case's and a call's lifecycle as the server enforces it (GET /api/lifecycles): the values by
// name, each state's label and the events it takes. The pages read them from here rather than
// keeping copies that drift; each page starts once `lifecyclesLoaded` has resolved.

const lifecycle = { case: null, call: null };
const lifecyclesLoaded = fetch("/api/lifecycles")
  .then((response) => {
    if (!response.ok) throw new Error(`/api/lifecycles: ${response.status}`);
    return response.json();
  })
  .then((all) => Object.assign(lifecycle, all));

// "新报警 new" for kind "case" and value "new"; a value the server does not know shows as itself.
function stateLabel(kind, value) {
  const state = lifecycle[kind].states[value];
  return state ? state.label : value;
}

// Whether a case or call in state `value` takes `event` (e.g. lifecycle.case.events.CLEAR_ROAD).
function stateTakes(kind, value, event) {
  const state = lifecycle[kind].states[value];
  return Boolean(state) && event in state.moves;
}
