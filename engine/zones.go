package engine

import (
	"fmt"
	"strings"
	"sync"
	"time"
	// The IANA zone database inside the binary: zones are checked at load and
	// used at run time also where the system has none (distroless images).
	_ "time/tzdata"
)

// commonZones are offered as a did-you-mean for a zone that does not exist.
var commonZones = []string{"UTC", "Europe/Moscow", "Europe/Kaliningrad", "Europe/Samara", "Europe/Volgograd",
	"Europe/Saratov", "Europe/Ulyanovsk", "Europe/Astrakhan", "Europe/Kirov", "Asia/Yekaterinburg", "Asia/Omsk",
	"Asia/Novosibirsk", "Asia/Barnaul", "Asia/Tomsk", "Asia/Novokuznetsk", "Asia/Krasnoyarsk", "Asia/Irkutsk",
	"Asia/Chita", "Asia/Yakutsk", "Asia/Khandyga", "Asia/Vladivostok", "Asia/Ust-Nera", "Asia/Magadan",
	"Asia/Sakhalin", "Asia/Srednekolymsk", "Asia/Kamchatka", "Asia/Anadyr", "Europe/Minsk", "Europe/Kyiv",
	"Europe/Chisinau", "Europe/Riga", "Europe/Vilnius", "Europe/Tallinn", "Asia/Almaty", "Asia/Tashkent",
	"Asia/Bishkek", "Asia/Dushanbe", "Asia/Ashgabat", "Asia/Baku", "Asia/Tbilisi", "Asia/Yerevan",
	"Europe/Istanbul", "Europe/Berlin", "Europe/London", "Asia/Dubai"}

var zoneCache sync.Map // name → *time.Location (names come from flow files: bounded)

// loadZone returns the IANA zone name, from a cache.
func loadZone(name string) (*time.Location, error) {
	if l, ok := zoneCache.Load(name); ok {
		return l.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" || name == "Local" {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	zoneCache.Store(name, loc)
	return loc, nil
}

// zoneHint suggests a zone close to a misspelled one.
func zoneHint(name string) string {
	if s := DidYouMean(name, commonZones); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	if !strings.Contains(name, "/") && !strings.EqualFold(name, "utc") {
		return "write an IANA zone name, Region/City: Europe/Moscow, Asia/Yekaterinburg, or UTC"
	}
	return ""
}
