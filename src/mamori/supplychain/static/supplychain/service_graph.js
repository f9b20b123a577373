/* The layered (tier-by-tier) graph of a critical service's supply chain, drawn with the
   vendored Cytoscape.js. Data comes from the page's JSON block (json_script): no inline script,
   so the site's CSP (script-src 'self') holds. The table on the page shows the same nodes. */
(function () {
  "use strict";

  function layeredPositions(nodes, width) {
    var tiers = {};
    nodes.forEach(function (node) {
      var tier = node.data.tier === null ? 0 : node.data.tier;
      (tiers[tier] = tiers[tier] || []).push(node);
    });
    var positions = {};
    Object.keys(tiers).forEach(function (tier) {
      var row = tiers[tier];
      var gap = Math.max(160, width / (row.length + 1));
      row.forEach(function (node, i) {
        positions[node.data.id] = { x: (i - (row.length - 1) / 2) * gap, y: Number(tier) * 130 };
      });
    });
    return positions;
  }

  function start() {
    var container = document.getElementById("service-graph");
    var source = document.getElementById("service-graph-data");
    if (!container || !source || typeof window.cytoscape !== "function") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var nodes = data.elements.filter(function (e) { return e.group === "nodes"; });
    var positions = layeredPositions(nodes, container.clientWidth || 800);
    var left = Math.min.apply(null, Object.keys(positions).map(function (id) { return positions[id].x; }));
    var labels = data.tier_labels || {};
    Object.keys(labels).forEach(function (tier) {
      var id = "__tier-" + tier;
      positions[id] = { x: left - 90, y: Number(tier) * 130 };
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
          "text-wrap": "wrap", "text-max-width": 130, "shape": "round-rectangle",
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
          "font-weight": "bold", "events": "no" } },
        { selector: "edge", style: {
          "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
          "line-color": "#9aa3b2", "target-arrow-color": "#9aa3b2",
          "label": "data(label)", "font-size": 9, "color": "#5b6475",
          "text-background-color": "#fff", "text-background-opacity": 0.85, "text-background-padding": 2 } },
        { selector: "edge.alternative", style: { "line-style": "dashed" } },
        { selector: "edge.sole", style: { "line-color": "#b3261e", "target-arrow-color": "#b3261e", "width": 2 } },
        { selector: ":selected", style: { "overlay-color": "#2f6fbe", "overlay-opacity": 0.2 } }
      ]
    });
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
