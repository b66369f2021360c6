// fake_oned: the in-memory oned stand-in (fake_oned.hpp) as a program, for
// tests that run one_ds_host or scripts in another process.
//
//   fake_oned [--oneadmin-password P] [--user NAME:PASSWORD]...
//             [--datastore ID:NAME:TYPE[:DS_MAD]]... [--auth-file FILE]
//
// Prints "ENDPOINT http://127.0.0.1:<port>/RPC2" on stdout once it serves,
// writes "oneadmin:<password>" to FILE (mode 0600) when asked, and serves
// until SIGINT or SIGTERM.
#include "tests/oned/fake_oned.hpp"

#include <boost/program_options.hpp>

#include <csignal>
#include <fcntl.h>
#include <iostream>
#include <pthread.h>
#include <unistd.h>

namespace po = boost::program_options;
using oneds::test::oned::datastore_record;
using oneds::test::oned::fake_oned;

namespace {

std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> out;
    std::string::size_type start = 0;
    for (auto pos = s.find(sep); pos != std::string::npos; pos = s.find(sep, start)) {
        out.push_back(s.substr(start, pos - start));
        start = pos + 1;
    }
    out.push_back(s.substr(start));
    return out;
}

void write_auth_file(const std::string &path, const std::string &session) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot write " + path);
    const std::string line = session + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int main(int argc, char **argv) {
    try {
        po::options_description desc("fake_oned: a stand-in for oned's XML-RPC API, for tests");
        desc.add_options()("help", "this text")                                             //
            ("oneadmin-password", po::value<std::string>(), "oneadmin's password")          //
            ("user", po::value<std::vector<std::string>>(), "NAME:PASSWORD (group users)")  //
            ("datastore", po::value<std::vector<std::string>>(), "ID:NAME:TYPE[:DS_MAD]")   //
            ("auth-file", po::value<std::string>(), "write oneadmin's session to this file");
        po::variables_map vm;
        po::store(po::parse_command_line(argc, argv, desc), vm);
        if (vm.count("help")) {
            std::cout << desc << "\n";
            return 0;
        }

        fake_oned::options opts;
        if (vm.count("oneadmin-password")) opts.oneadmin_password = vm["oneadmin-password"].as<std::string>();
        fake_oned oned(opts);
        if (vm.count("user"))
            for (const auto &u : vm["user"].as<std::vector<std::string>>()) {
                auto colon = u.find(':');
                if (colon == std::string::npos) throw std::runtime_error("--user wants NAME:PASSWORD");
                oned.add_user(u.substr(0, colon), u.substr(colon + 1));
            }
        if (vm.count("datastore"))
            for (const auto &d : vm["datastore"].as<std::vector<std::string>>()) {
                auto f = split(d, ':');
                if (f.size() < 3) throw std::runtime_error("--datastore wants ID:NAME:TYPE[:DS_MAD]");
                datastore_record ds;
                ds.id = std::stoi(f[0]);
                ds.name = f[1];
                ds.type = f[2];
                if (f.size() > 3) ds.attributes.set("DS_MAD", f[3]);
                oned.add_datastore(std::move(ds));
            }
        if (vm.count("auth-file")) write_auth_file(vm["auth-file"].as<std::string>(), oned.oneadmin_session());

        // Block the stop signals before any thread starts, then wait for one.
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop, nullptr);
        oned.start();
        std::cout << "ENDPOINT " << oned.endpoint() << std::endl;
        int sig = 0;
        sigwait(&stop, &sig);
        oned.stop();
        return 0;
    } catch (const std::exception &e) {
        std::cerr << "fake_oned: " << e.what() << "\n";
        return 2;
    }
}
