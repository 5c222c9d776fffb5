/*
 * leadcast-visit.js - web-visit tracking for the marketer's own site.
 *
 * Serve this file from your own site (first party) and load it on every
 * page, naming your leadcast server:
 *
 *   <script src="/js/leadcast-visit.js" data-leadcast="https://leads.example.com" async></script>
 *
 * A reader who clicks a tracked link of a message to one of the sites of
 * leadcast.conf's track.sites arrives with ?lc=TOKEN. The script keeps
 * TOKEN in a cookie of your site (lc, one year, SameSite=Lax), takes it
 * out of the address bar, and on every page it loads asks the leadcast
 * server for /v.gif with the page's URL and referrer: a visit, or a hot
 * page (track.hot_pages). Visitors without a token are not reported. It
 * sets nothing else, reads nothing else, and does nothing when the
 * browser sends Do Not Track or Global Privacy Control.
 *
 * Browser limits: Safari (ITP) keeps cookies set by scripts for 7 days,
 * and for 24 hours when the visitor came through a link carrying such a
 * parameter from a site it classifies as a tracker; Firefox and Brave
 * may strip known tracking parameters or block the request; ad blockers
 * may block /v.gif. A visitor on another browser or device is unknown.
 */
(function (w, d) {
	"use strict";
	var s = d.currentScript, base = s && s.getAttribute("data-leadcast");
	var nav = w.navigator || {};

	if (!base || nav.doNotTrack === "1" || nav.globalPrivacyControl)
		return;
	base = base.replace(/\/+$/, "");

	function param(name) {
		var m = new RegExp("[?&]" + name + "=([A-Za-z0-9_-]{1,64})(&|$)")
		    .exec(w.location.search);
		return m ? m[1] : null;
	}
	function cookie(name) {
		var m = new RegExp("(?:^|; )" + name + "=([A-Za-z0-9_-]{1,64})")
		    .exec(d.cookie);
		return m ? m[1] : null;
	}

	var tok = param("lc");
	if (tok) {
		d.cookie = "lc=" + tok + "; path=/; max-age=31536000; SameSite=Lax" +
		    (w.location.protocol === "https:" ? "; Secure" : "");
		if (w.history && w.history.replaceState) {
			var q = w.location.search.replace(/([?&])lc=[^&]*&?/, "$1")
			    .replace(/[?&]$/, "");
			w.history.replaceState(w.history.state, "", w.location.pathname +
			    q + w.location.hash);
		}
	} else {
		tok = cookie("lc");
	}
	if (!tok)
		return;
	var img = new Image(1, 1);
	img.referrerPolicy = "no-referrer-when-downgrade";
	img.src = base + "/v.gif?lc=" + encodeURIComponent(tok) + "&u=" +
	    encodeURIComponent(w.location.href.slice(0, 500)) + "&r=" +
	    encodeURIComponent((d.referrer || "").slice(0, 500));
})(window, document);
