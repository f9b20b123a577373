/* The layered (tier-by-tier) graph of a critical service's supply chain, drawn with the
   vendored Cytoscape.js. Data comes from the page's JSON block (json_script): no inline script,
   so the site's CSP (script-src 'self') holds. The table on the page shows the same nodes. */
(function () {
  "use strict";

  // Layout in model units. A node's label is cut to LABEL_WIDTH with an ellipsis (the full name
  // is in the container's title while the pointer is on the node, and in the table), and node
  // centres are NODE_GAP apart, so neighbouring labels never touch; a tier wider than the
  // container is folded into rows ROW_GAP apart instead of being zoomed out to illegibility.
  var NODE_GAP = 170;
  var LABEL_WIDTH = 150;
  var ROW_GAP = 72;
  var TIER_GAP = 120;

  function layeredPositions(nodes, width) {
    var tiers = {};
    nodes.forEach(function (node) {
      var tier = node.data.tier === null ? 0 : node.data.tier;
      (tiers[tier] = tiers[tier] || []).push(node);
    });
    var perRow = Math.max(4, Math.floor(width / NODE_GAP));
    var positions = {};
    var tierY = {};
    var y = 0;
    Object.keys(tiers).map(Number).sort(function (a, b) { return a - b; }).forEach(function (tier) {
      var members = tiers[tier];
      tierY[tier] = y;
      members.forEach(function (node, i) {
        var row = Math.floor(i / perRow);
        var inRow = Math.min(perRow, members.length - row * perRow);
        positions[node.data.id] = { x: (i % perRow - (inRow - 1) / 2) * NODE_GAP, y: y + row * ROW_GAP };
      });
      y += (Math.ceil(members.length / perRow) - 1) * ROW_GAP + TIER_GAP;
    });
    return { nodes: positions, tiers: tierY };
  }

  function showNeeds(node, on) {
    node.connectedEdges().forEach(function (edge) {
      if (on) { edge.addClass("labelled"); } else if (!node.selected()) { edge.removeClass("labelled"); }
    });
  }

  function start() {
    var container = document.getElementById("service-graph");
    var source = document.getElementById("service-graph-data");
    if (!container || !source || typeof window.cytoscape !== "function") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var nodes = data.elements.filter(function (e) { return e.group === "nodes"; });
    var layout = layeredPositions(nodes, container.clientWidth || 800);
    var positions = layout.nodes;
    var left = Math.min.apply(null, Object.keys(positions).map(function (id) { return positions[id].x; }));
    var labels = data.tier_labels || {};
    Object.keys(labels).forEach(function (tier) {
      if (layout.tiers[tier] === undefined) { return; }
      var id = "__tier-" + tier;
      // Right-aligned to end clear of the leftmost node's label.
      positions[id] = { x: left - LABEL_WIDTH / 2 - 16, y: layout.tiers[tier] };
      data.elements.push({ group: "nodes", data: { id: id, label: labels[tier] }, classes: "tier-label", selectable: false, grabbable: false });
    });
    container.classList.add("sc-ready");
    var cy = window.cytoscape({
      container: container,
      elements: data.elements,
      layout: { name: "preset", positions: positions, fit: true, padding: 30 },
      style: [
        { selector: "node", style: {
          "label": "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
          "text-wrap": "ellipsis", "text-max-width": LABEL_WIDTH, "shape": "round-rectangle",
          "text-background-color": "#fff", "text-background-opacity": 0.85, "text-background-padding": 1,
          "width": 36, "height": 24, "background-color": "#e6effb",
          "border-width": 2, "border-color": "#7b8798", "color": "#1d2433" } },
        { selector: "node.critical", style: {
          "background-color": "#23395b", "border-color": "#23395b", "shape": "hexagon",
          "width": 44, "height": 34, "font-weight": "bold" } },
        { selector: "node.opaque", style: { "background-color": "#e4e6ea", "border-style": "dashed" } },
        { selector: "node.uncertified", style: { "border-color": "#e08a00", "border-width": 3 } },
        { selector: "node.spof", style: { "background-color": "#f6c4bf", "border-color": "#b3261e", "border-width": 4 } },
        { selector: "node.spof.uncertified", style: { "border-color": "#e08a00" } },
        { selector: "node.tier-label", style: {
          "shape": "rectangle", "background-opacity": 0, "border-width": 0, "width": 1, "height": 1,
          "text-valign": "center", "text-halign": "left", "color": "#5b6475", "font-size": 12,
          "text-max-width": 90, "font-weight": "bold", "events": "no" } },
        { selector: "edge", style: {
          "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
          "line-color": "#9aa3b2", "target-arrow-color": "#9aa3b2",
          "font-size": 9, "color": "#5b6475", "text-rotation": "autorotate",
          "text-background-color": "#fff", "text-background-opacity": 0.85, "text-background-padding": 2 } },
        // The need an edge serves is written only on the edges of the node under the pointer or
        // selected: written on every edge, the labels of converging edges pile up.
        { selector: "edge.labelled", style: { "label": "data(label)" } },
        { selector: "edge.alternative", style: { "line-style": "dashed" } },
        { selector: "edge.sole", style: { "line-color": "#b3261e", "target-arrow-color": "#b3261e", "width": 2 } },
        { selector: ":selected", style: { "overlay-color": "#2f6fbe", "overlay-opacity": 0.2 } }
      ]
    });
    container.scGraph = cy;  // the instance, for other scripts and the browser tests
    cy.on("mouseover", "node", function (event) {
      if (event.target.hasClass("tier-label")) { return; }
      container.title = event.target.data("label");
      showNeeds(event.target, true);
    });
    cy.on("mouseout", "node", function (event) {
      container.title = "";
      showNeeds(event.target, false);
    });
    cy.on("select", "node", function (event) { showNeeds(event.target, true); });
    cy.on("unselect", "node", function (event) { showNeeds(event.target, false); });
    cy.on("tap", "node", function (event) {
      var id = event.target.id();
      document.querySelectorAll("#graph-table tr.sc-selected").forEach(function (row) {
        row.classList.remove("sc-selected");
      });
      document.querySelectorAll("#graph-table tr[data-node]").forEach(function (row) {
        if (row.getAttribute("data-node") === id) {
          row.classList.add("sc-selected");
          row.scrollIntoView({ block: "nearest" });
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
