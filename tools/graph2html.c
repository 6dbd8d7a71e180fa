// graph2html — an attribution graph JSON (attrib, circuit-tracer) as one offline HTML page.
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "graph_html.h"

static const char USAGE[] =
    "usage: graph2html [GRAPH.json | -] [-o PAGE.html] [--features DIR] [--explanations FILE]\n"
    "\n"
    "Turns an attribution graph (Neuronpedia graph JSON, schema version 1, as `attrib` and\n"
    "circuit-tracer's create_graph_files write it; default: stdin) into one self-contained HTML page\n"
    "that needs no server and loads nothing from the network: prompt tokens as columns, layers as\n"
    "rows (embeddings at the bottom, logits on top), a glyph per node type (feature circle, error\n"
    "diamond, embedding square, logit triangle), edges on a canvas coloured by sign (blue +, orange -,\n"
    "negative dashed) and sized by their share of the target's input. Hover or click a node for its\n"
    "ranked inputs and outputs; Ctrl/Cmd-click pins it into the subgraph; hold G and click pinned\n"
    "nodes to group them into a supernode; the influence slider prunes; search by feature id, label\n"
    "or token; the URL hash holds the state (pinned, supernodes, clicked, threshold); the pinned\n"
    "subgraph exports as graph JSON. The graph is validated first: bad input is one error line and\n"
    "a non-zero exit, and no page is written. The page is written atomically.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE        page to write (default: stdout, '-')\n"
    "  --features DIR           per-feature JSON files DIR/{layer}_{index}.json (feat-topk export)\n"
    "                           or DIR/{feature id}.json (circuit-tracer's frontend: the Cantor id),\n"
    "                           circuit-tracer's feature format: top activations, quantiles,\n"
    "                           histogram, top/bottom logits, density in the feature panel\n"
    "  --explanations FILE      interp-prompt JSONL ({\"layer\", \"feature\", \"label\", \"explanation\",\n"
    "                           \"scores\"}): the label names nodes whose clerp is empty, the\n"
    "                           explanation and its scores show in the panel\n"
    "  --max-examples N         keep at most N examples per quantile group of a feature (default 10;\n"
    "                           0: all)\n"
    "  --title TEXT             page title (default: the graph's slug)\n"
    "  -q, --quiet              no summary line on stderr\n"
    "  -h, --help, --version\n";

int main(int argc, char **argv) {
    cli_standard(argc, argv, "graph2html", USAGE);
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"features", required_argument, 0, 'f'},
                                         {"explanations", required_argument, 0, 'x'},
                                         {"max-examples", required_argument, 0, 'm'},
                                         {"title", required_argument, 0, 't'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {0, 0, 0, 0}};
    GraphHtmlOptions o = {.max_examples = 10};
    const char *out = "-";
    int quiet = 0, c;
    while ((c = getopt_long(argc, argv, "o:q", opts, NULL)) != -1) {
        switch (c) {
            case 'o': out = optarg; break;
            case 'f': o.features_dir = optarg; break;
            case 'x': o.explanations_path = optarg; break;
            case 'm': o.max_examples = (int)cli_parse_int("--max-examples", optarg, 0, 1000000); break;
            case 't': o.title = optarg; break;
            case 'q': quiet = 1; break;
            default: cli_usage_error("graph2html", "bad option");
        }
    }
    if (argc - optind > 1) cli_usage_error("graph2html", "give at most one graph JSON");
    const char *in = optind < argc ? argv[optind] : "-";
    GraphHtmlStats st;
    Error e;
    if (graph_html_convert(in, &o, out, &st, &e)) fatal_err(&e);
    if (!quiet) {
        fprintf(stderr,
                "graph2html: %s -> %s: %d nodes, %d links, %d tokens, %d features (%d with files, %d explained)",
                strcmp(in, "-") ? in : "stdin", strcmp(out, "-") ? out : "stdout", st.n_nodes, st.n_links, st.n_tokens,
                st.n_features, st.n_feature_files, st.n_explanations);
        if (st.n_duplicate_ids) fprintf(stderr, ", %d duplicate node_ids (links go to the first)", st.n_duplicate_ids);
        fprintf(stderr, ", %zu bytes\n", st.html_bytes);
    }
    return 0;
}
